package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// apiHandler answers API Gateway REST proxy requests.
type apiHandler interface {
	Handle(ctx context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse
}

// sweepRunner runs one sweep.
type sweepRunner interface {
	Sweep(ctx context.Context, eventID string) (SweepResult, error)
}

// batchInvoker delivers an SQS batch of fire messages.
type batchInvoker interface {
	Invoke(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse
}

// Router is the one Lambda handler of the bootstrap binary. It reads the
// raw event, decides which trigger sent it, and dispatches: API Gateway
// proxy requests to API, EventBridge scheduled events to Sweeper, SQS
// batches to Invoker. A nil part means this deployment of the binary does
// not serve that trigger; such an event is an error that says so.
type Router struct {
	API     apiHandler
	Sweeper sweepRunner
	Invoker batchInvoker
}

// eventProbe holds just the fields that tell the triggers apart.
type eventProbe struct {
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	ID             string          `json:"id"`
	Source         string          `json:"source"`
	DetailType     string          `json:"detail-type"`
	HTTPMethod     string          `json:"httpMethod"`
	RequestContext json.RawMessage `json:"requestContext"`
}

// Invoke implements lambda.Handler.
func (r *Router) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, fmt.Errorf("unrecognised event: not a JSON object (%d bytes starting %q)", len(payload), prefix(payload, 32))
	}
	var p eventProbe
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("unrecognised event with keys [%s]: %v", keys(fields), err)
	}
	switch {
	case len(p.Records) > 0 && p.Records[0].EventSource == "aws:sqs":
		return r.invoke(ctx, payload)
	case p.Source == "aws.events" && p.DetailType == "Scheduled Event":
		return r.sweep(ctx, p.ID)
	case p.HTTPMethod != "" && len(p.RequestContext) > 0:
		return r.serve(ctx, payload)
	case len(p.Records) > 0:
		return nil, fmt.Errorf("unrecognised event: Records from event source %q", p.Records[0].EventSource)
	case p.Source != "":
		return nil, fmt.Errorf("unrecognised event: source %q, detail-type %q", p.Source, p.DetailType)
	}
	return nil, fmt.Errorf("unrecognised event with keys [%s]", keys(fields))
}

func keys(m map[string]json.RawMessage) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func prefix(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// invoke hands an SQS batch to the invoker.
func (r *Router) invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if r.Invoker == nil {
		return nil, errors.New("received an SQS batch, but this function serves no invoker (CALLCLOCK_PART names another part, or CALLBACK_QUEUE_URL is unset)")
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("malformed SQS event: %w", err)
	}
	return json.Marshal(r.Invoker.Invoke(ctx, ev))
}

// sweep runs the sweep of scheduled event id.
func (r *Router) sweep(ctx context.Context, id string) ([]byte, error) {
	if r.Sweeper == nil {
		return nil, errors.New("received a scheduled event, but this function serves no sweeper (CALLCLOCK_PART names another part, or FIRE_QUEUE_URL is unset)")
	}
	res, err := r.Sweeper.Sweep(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// serve answers an API Gateway proxy request, always with a proxy
// response: a Go error would reach the client as a bare 502.
func (r *Router) serve(ctx context.Context, payload []byte) ([]byte, error) {
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("malformed API Gateway proxy event: %w", err)
	}
	if r.API == nil {
		return json.Marshal(render(errorResponse(Errorf(EUNAVAILABLE, "this function does not serve the API"))))
	}
	return json.Marshal(r.API.Handle(ctx, req))
}
