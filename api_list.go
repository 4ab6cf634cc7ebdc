package main

// The list, GET /periodic: its query, its pages and their cursors.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
)

// listParams are the query parameters GET /periodic takes; any other is
// refused, so that a misspelt filter does not silently list everything.
var listParams = map[string]bool{"group": true, "state": true, "limit": true, "cursor": true}

// Page sizes of the list.
const (
	defaultListLimit = 50
	maxListLimit     = 500
)

// listQuery is a parsed GET /periodic query.
type listQuery struct {
	Group, State string
	Limit        int32
	// Cursor is the store's start key, nil for the first page.
	Cursor map[string]string
}

// timerPage is one page of the list as the API renders it.
type timerPage struct {
	Timers []*Timer `json:"timers"`
	Cursor string   `json:"cursor,omitempty"`
}

// list is GET /periodic?group=&state=&limit=&cursor=.
func (a *API) list(ctx context.Context, req events.APIGatewayProxyRequest) (int, any, error) {
	q, err := parseListQuery(req.QueryStringParameters)
	if err != nil {
		return 0, nil, err
	}
	timers, next, err := a.Timers.List(ctx, q.Group, q.State, q.Limit, q.Cursor, a.Now().UTC())
	if err != nil {
		return 0, nil, err
	}
	page := timerPage{Timers: make([]*Timer, 0, len(timers))} // an empty page is [], not null
	for _, t := range timers {
		page.Timers = append(page.Timers, a.withNext(t))
	}
	if next != nil {
		if page.Cursor, err = encodeCursor(next, q.Group, q.State); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, page, nil
}

// parseListQuery checks a list's query parameters. The state is left to
// the store, which knows the states it can filter on.
func parseListQuery(params map[string]string) (listQuery, error) {
	for k := range params {
		if !listParams[k] {
			return listQuery{}, Errorf(EINVALID, "unknown query parameter %q (group, state, limit, cursor)", k)
		}
	}
	q := listQuery{Group: params["group"], State: params["state"], Limit: defaultListLimit}
	if q.Group != "" {
		if err := validateGroup(q.Group); err != nil {
			return listQuery{}, err
		}
	}
	if s := params["limit"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return listQuery{}, Errorf(EINVALID, "limit must be a whole number from 1 to %d", maxListLimit)
		}
		q.Limit = int32(n)
	}
	if c := params["cursor"]; c != "" {
		var err error
		if q.Cursor, err = decodeCursor(c, q.Group, q.State); err != nil {
			return listQuery{}, err
		}
	}
	return q, nil
}

// listCursor is what a list cursor carries: the id and group of the last
// timer the page read, from which the store rebuilds the index key to
// start after, and the filter it belongs to, so that it cannot continue
// another list. It names a timer and nothing internal.
//
// It is not signed. A start key only positions the read, whose key
// condition and filter still apply, and it can only name a timer: a forged
// cursor shows the caller nothing a list from the start would not. What
// must not reach DynamoDB is a key it rejects (a 500) or one of another
// list; decodeCursor refuses both.
type listCursor struct {
	ID string `json:"id"`
	// At is the group of the timer named by ID ("" for none): in the list
	// of all timers, where each page ends in some group.
	At    string `json:"at,omitempty"`
	Group string `json:"group,omitempty"`
	State string `json:"state,omitempty"`
}

// encodeCursor makes the cursor for next, the store's page key: the id and
// group of the last timer read.
func encodeCursor(next map[string]string, group, state string) (string, error) {
	c := listCursor{ID: next["id"], At: next["group"], Group: group, State: state}
	if len(next) != 2 || !cursorValid(c) {
		return "", fmt.Errorf("list: unexpected page key %v", next) // a bug
	}
	raw, err := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw), err
}

// cursorValid reports whether c names a timer that its list can stop at.
func cursorValid(c listCursor) bool {
	return validateID(c.ID) == nil && (c.At == "" || validateGroup(c.At) == nil) && (c.Group == "" || c.At == c.Group)
}

// decodeCursor checks a cursor against the list it is passed to and
// returns the store's start key.
func decodeCursor(s, group, state string) (map[string]string, error) {
	malformed := Errorf(EINVALID, "cursor is malformed; pass back the cursor of the previous page")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, malformed
	}
	var c listCursor
	if decodeBody(events.APIGatewayProxyRequest{Body: string(raw)}, &c) != nil || !cursorValid(c) {
		return nil, malformed
	}
	if c.Group != group || c.State != state {
		return nil, Errorf(EINVALID, "cursor belongs to the list of group %q and state %q; pass it back with the same group and state", c.Group, c.State)
	}
	return map[string]string{"id": c.ID, "group": c.At}, nil
}
