package main

// The API's destination limits: PUT, GET and DELETE /limits/{key}, and
// the list, GET /limits. A limit is about a destination, not one timer:
// every timer whose http.limitKey is the key obeys it (limits.go).

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// limitAdmin is what the API needs from the table for limits.
type limitAdmin interface {
	PutLimit(ctx context.Context, l Limit, now time.Time) (Limit, bool, error)
	GetLimit(ctx context.Context, key string) (Limit, error)
	DeleteLimit(ctx context.Context, key string) error
	ListLimits(ctx context.Context) ([]Limit, error)
}

// Resources of limits (resourceOf).
const (
	resLimits = "limits" // /limits
	resLimit  = "limit"  // /limits/{key}
)

// limitResource names the kind of limits resource segs address, "" for
// none.
func limitResource(segs []string) string {
	switch {
	case len(segs) == 1 && segs[0] == "limits":
		return resLimits
	case len(segs) == 2 && segs[0] == "limits":
		return resLimit
	}
	return ""
}

// limitRequest is the body of PUT /limits/{key}.
type limitRequest struct {
	PerSecond *int `json:"perSecond"`
	InFlight  *int `json:"inFlight"`
}

// limits answers the limits resources.
func (a *API) limits(ctx context.Context, segs []string, req events.APIGatewayProxyRequest) (int, any, error) {
	if a.Limits == nil {
		return 0, nil, Errorf(ENOTFOUND, "no such resource: %s (this deployment keeps no limits)", req.Path)
	}
	if len(segs) == 1 {
		if req.HTTPMethod != http.MethodGet {
			return 0, nil, methodNotAllowed(req.HTTPMethod, "/limits", "GET")
		}
		for name := range req.QueryStringParameters {
			return 0, nil, Errorf(EINVALID, "GET /limits takes no query parameter; got %s", name)
		}
		ls, err := a.Limits.ListLimits(ctx)
		if err != nil {
			return 0, nil, err
		}
		if ls == nil {
			ls = []Limit{}
		}
		return http.StatusOK, map[string]any{"limits": ls}, nil
	}
	key := segs[1]
	switch req.HTTPMethod {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
	default:
		return 0, nil, methodNotAllowed(req.HTTPMethod, "/limits/{key}", "DELETE, GET, PUT")
	}
	if err := validateLimitKey("the limit's key", key); err != nil {
		return 0, nil, err
	}
	switch req.HTTPMethod {
	case http.MethodGet:
		l, err := a.Limits.GetLimit(ctx, key)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, l, nil
	case http.MethodDelete:
		if err := a.Limits.DeleteLimit(ctx, key); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, key, nil
	}
	return a.putLimit(ctx, key, req)
}

// putLimit is PUT /limits/{key}: create or replace the limit.
func (a *API) putLimit(ctx context.Context, key string, req events.APIGatewayProxyRequest) (int, any, error) {
	var in limitRequest
	if err := decodeBody(req, &in); err != nil {
		return 0, nil, err
	}
	l := Limit{Key: key}
	if in.PerSecond != nil {
		if *in.PerSecond < 1 {
			return 0, nil, Errorf(EINVALID, "perSecond must be from 1 to %d", MaxPerSecond)
		}
		l.PerSecond = *in.PerSecond
	}
	if in.InFlight != nil {
		if *in.InFlight < 1 {
			return 0, nil, Errorf(EINVALID, "inFlight must be from 1 to %d", MaxInFlight)
		}
		l.InFlight = *in.InFlight
	}
	if err := l.Validate(); err != nil {
		return 0, nil, err
	}
	stored, created, err := a.Limits.PutLimit(ctx, l, a.Now())
	if err != nil {
		return 0, nil, err
	}
	if created {
		return http.StatusCreated, stored, nil
	}
	return http.StatusOK, stored, nil
}
