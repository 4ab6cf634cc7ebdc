package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// The command line's API client: requests to the REST API signed with
// SigV4 through the SDK's credential chain, and its errors.

// eventsRequest wraps a body as an API request, for decodeBody.
func eventsRequest(body []byte) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{Body: string(body)}
}

// apiClient calls the REST API signed with SigV4 for execute-api.
type apiClient struct {
	Endpoint string
	Region   string
	Creds    aws.CredentialsProvider
	HTTP     *http.Client
}

// timersAPIError is a non-2xx answer: its status, the API's error code
// (empty when the body has none, as in API Gateway's own 403) and message.
type timersAPIError struct {
	Status  int
	Code    string
	Message string
}

func (e *timersAPIError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	u := c.Endpoint + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	creds, err := c.Creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	// The signer adds X-Amz-Security-Token when creds has a session token.
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.Region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, decodeAPIError(resp.StatusCode, b)
	}
	return b, nil
}

// decodeAPIError reads a non-2xx body: the API's {"error":{"code",
// "message"}}, API Gateway's {"message"}, or any other text as the message.
func decodeAPIError(status int, b []byte) *timersAPIError {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
		Msg   string                         `json:"message"` // API Gateway's default
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && (e.Error.Message != "" || e.Msg != "") {
		msg = e.Error.Message + e.Msg
	}
	return &timersAPIError{Status: status, Code: e.Error.Code, Message: msg}
}

// Exit codes of the timers commands, which scripts can rely on.
const (
	exitOK          = 0 // done
	exitFailure     = 1 // any other failure
	exitUsage       = 2 // invalid input or usage
	exitNotFound    = 3 // no such timer
	exitDenied      = 4 // the API refused the credentials
	exitUnavailable = 5 // the API is down, failing or unreachable
)

// apiCodeExits maps the API's error codes (errors.go) to exit codes;
// conflict and method_not_allowed are other failures.
var apiCodeExits = map[string]int{
	"invalid":            exitUsage,
	"payload_too_large":  exitUsage,
	"not_found":          exitNotFound,
	"forbidden":          exitDenied,
	"conflict":           exitFailure,
	"method_not_allowed": exitFailure,
	"internal":           exitUnavailable,
	"unavailable":        exitUnavailable,
	"bad_gateway":        exitUnavailable,
}

// statusExits maps statuses to exit codes when the body has no code (API
// Gateway's own answers: 403 for IAM, 5xx for a failed integration).
var statusExits = map[int]int{
	http.StatusBadRequest:            exitUsage,
	http.StatusRequestEntityTooLarge: exitUsage,
	http.StatusNotFound:              exitNotFound,
	http.StatusForbidden:             exitDenied,
	http.StatusUnauthorized:          exitDenied,
}

// exitCodeOf is the exit code for err from apiClient.do: by the API's
// code, else by status (any 5xx is unavailable), a network error
// (refused, reset, timed out) unavailable, anything else 1.
func exitCodeOf(err error) int {
	if err == nil {
		return exitOK
	}
	var ae *timersAPIError
	if errors.As(err, &ae) {
		if c, ok := apiCodeExits[ae.Code]; ok {
			return c
		}
		if c, ok := statusExits[ae.Status]; ok {
			return c
		}
		if ae.Status >= 500 {
			return exitUnavailable
		}
		return exitFailure
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return exitUnavailable
	}
	return exitFailure
}

// groupTimers lists every timer of group, following cursors.
func (c *apiClient) groupTimers(ctx context.Context, group string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	cursor := ""
	for {
		q := url.Values{"group": {group}, "limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		b, err := c.do(ctx, http.MethodGet, "/periodic", q, nil)
		if err != nil {
			return nil, fmt.Errorf("list group %s: %w", group, err)
		}
		var page struct {
			Timers []json.RawMessage `json:"timers"`
			Cursor string            `json:"cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("list group %s: %w", group, err)
		}
		for _, t := range page.Timers {
			var id struct{ ID string }
			json.Unmarshal(t, &id)
			doc, err := definitionOfJSON(t)
			if err != nil {
				return nil, err
			}
			out[id.ID] = doc
		}
		if page.Cursor == "" {
			return out, nil
		}
		cursor = page.Cursor
	}
}

// timerLookups bounds the GETs getTimers makes at once.
const timerLookups = 8

// apiCaller is one signed call to the API, as apiClient.do makes it:
// what getTimers and the console need of the API.
type apiCaller interface {
	do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error)
}

// getTimers GETs each timer of ids, timerLookups at a time, for the
// views that show a list with each timer's last outcome (the list's items
// carry none): the command line's `timers list` and the console. A timer
// deleted since the list is nil; the first other failure, by position,
// fails them all, naming its timer.
func getTimers(ctx context.Context, api apiCaller, ids []string) ([]map[string]any, error) {
	docs := make([]map[string]any, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, timerLookups)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			b, err := api.do(ctx, http.MethodGet, timerPath(id), nil, nil)
			if exitCodeOf(err) == exitNotFound {
				return
			}
			if err == nil && json.Unmarshal(b, &docs[i]) != nil {
				err = Errorf(EBADGATEWAY, "the API's timer %s is not the JSON expected", id)
			}
			if err != nil {
				errs[i] = fmt.Errorf("timer %s: %w", id, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// newAPIClient loads the standard credential chain.
func newAPIClient(ctx context.Context, endpoint string) (*apiClient, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	if cfg.Credentials == nil {
		return nil, errors.New("no AWS credentials found")
	}
	return &apiClient{Endpoint: strings.TrimRight(endpoint, "/"), Region: region, Creds: cfg.Credentials,
		HTTP: &http.Client{Timeout: 60 * time.Second}}, nil
}
