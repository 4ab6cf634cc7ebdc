package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// routed records which part of the router an event reached, and with what.
type routed struct {
	Part    string   // "api", "sweep" or "invoke"
	Method  string   // API: HTTP method
	Path    string   // API: path
	Body    string   // API: body
	Records []string // invoke: message ids
	Bodies  []string // invoke: message bodies
}

type fakeAPI struct{ got *[]routed }

func (f fakeAPI) Handle(_ context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	*f.got = append(*f.got, routed{Part: "api", Method: req.HTTPMethod, Path: req.Path, Body: req.Body})
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: `"ok"`}
}

type fakeSweeper struct {
	got *[]routed
	err error
}

func (f fakeSweeper) Sweep(_ context.Context, eventID string) (SweepResult, error) {
	*f.got = append(*f.got, routed{Part: "sweep", Body: eventID})
	return SweepResult{Minutes: 2, Due: 3, Enqueued: 3}, f.err // as a sweep of two minutes answers
}

type fakeInvoker struct{ got *[]routed }

func (f fakeInvoker) Invoke(_ context.Context, ev events.SQSEvent) events.SQSEventResponse {
	r := routed{Part: "invoke"}
	for _, m := range ev.Records {
		r.Records = append(r.Records, m.MessageId)
		r.Bodies = append(r.Bodies, m.Body)
	}
	*f.got = append(*f.got, r)
	return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "failed-1"}}}
}

func newFakeRouter(got *[]routed, sweepErr error) *Router {
	return &Router{API: fakeAPI{got}, Sweeper: fakeSweeper{got, sweepErr}, Invoker: fakeInvoker{got}}
}

// TestRouterSampleEvents runs every sample event in events/ through the
// router and checks where it went and what came back, so the samples stay
// usable with `sam local invoke -e` and `bootstrap invoke -e`.
func TestRouterSampleEvents(t *testing.T) {
	sqsBody := `{"timerId":"fee5f544-af54-4ec3-9631-32f0d8d88309","version":1,"scheduledAt":"2026-11-22T09:45:00Z",` +
		`"timerCallbackData":{"version":1,"id":"fee5f544-af54-4ec3-9631-32f0d8d88309","worktype":"poll a third party API"}}`
	const id = "/periodic/fee5f544-af54-4ec3-9631-32f0d8d88309"
	tests := map[string]struct {
		want routed
		out  string
	}{
		"api-put.json": {routed{Part: "api", Method: "PUT", Path: id,
			Body: `{"timerCallbackData": {"version": 1, "id": "fee5f544-af54-4ec3-9631-32f0d8d88309", "worktype": "poll a third party API"}, "minuteOfHour": 45}`},
			`{"statusCode":200,"headers":null,"multiValueHeaders":null,"body":"\"ok\""}`},
		"api-get.json":    {routed{Part: "api", Method: "GET", Path: id}, `{"statusCode":200,"headers":null,"multiValueHeaders":null,"body":"\"ok\""}`},
		"api-delete.json": {routed{Part: "api", Method: "DELETE", Path: id}, `{"statusCode":200,"headers":null,"multiValueHeaders":null,"body":"\"ok\""}`},
		"scheduled.json": {routed{Part: "sweep", Body: "89d1a02d-5ec7-412e-82f5-13505f849b41"},
			`{"minutes":2,"skipped":0,"due":3,"enqueued":3,"missed":0,"failed":0}`},
		"sqs.json": {routed{Part: "invoke", Records: []string{"059f36b4-87a3-44ab-83d2-661975830a7d"}, Bodies: []string{sqsBody}},
			`{"batchItemFailures":[{"itemIdentifier":"failed-1"}]}`},
	}
	files, err := filepath.Glob("events/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("events/ has %d files, the test knows %d: add a case for each sample", len(files), len(tests))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			tc, ok := tests[filepath.Base(file)]
			if !ok {
				t.Fatalf("no expectation for %s", file)
			}
			payload, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var got []routed
			out, err := newFakeRouter(&got, nil).Invoke(context.Background(), payload)
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if diff := cmp.Diff([]routed{tc.want}, got); diff != "" {
				t.Errorf("routed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.out, string(out)); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRouterRejects checks that events no trigger sends are errors naming
// what arrived, and reach no part.
func TestRouterRejects(t *testing.T) {
	tests := []struct {
		name, event, wantErr string
	}{
		{"not JSON", `hello`, `not a JSON object (5 bytes starting "hello")`},
		{"array", `[1,2]`, `not a JSON object`},
		{"empty object", `{}`, `unrecognised event with keys []`},
		{"unknown keys", `{"foo":1,"bar":2}`, `unrecognised event with keys [bar, foo]`},
		{"SNS records", `{"Records":[{"EventSource":"aws:sns","eventSource":"aws:sns"}]}`, `Records from event source "aws:sns"`},
		{"other EventBridge event", `{"source":"aws.events","detail-type":"Object Created"}`, `source "aws.events", detail-type "Object Created"`},
		{"custom source", `{"source":"my.app","detail-type":"Scheduled Event"}`, `source "my.app"`},
		{"httpMethod without requestContext", `{"httpMethod":"GET","path":"/periodic/x"}`, `keys [httpMethod, path]`},
		{"wrong types", `{"Records":"nope"}`, `unrecognised event with keys [Records]`},
		{"malformed SQS record", `{"Records":[{"eventSource":"aws:sqs","body":7}]}`, `malformed SQS event`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []routed
			out, err := newFakeRouter(&got, nil).Invoke(context.Background(), []byte(tc.event))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Invoke(%s) = %s, %v; want error containing %q", tc.event, out, err, tc.wantErr)
			}
			if len(got) != 0 {
				t.Errorf("a rejected event reached %v", got)
			}
		})
	}
}

// TestRouterPartsMissing checks a function deployed without a part: the
// API still answers with a proxy response, the others are errors that say
// which variable is missing.
func TestRouterPartsMissing(t *testing.T) {
	r := &Router{}
	for _, tc := range []struct{ file, wantErr string }{
		{"events/scheduled.json", "FIRE_QUEUE_URL is unset"},
		{"events/sqs.json", "CALLBACK_QUEUE_URL is unset"},
	} {
		payload, _ := os.ReadFile(tc.file)
		if _, err := r.Invoke(context.Background(), payload); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.wantErr)
		}
	}
	payload, _ := os.ReadFile("events/api-get.json")
	out, err := r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 503 || !strings.Contains(resp.Body, `"code":"unavailable"`) {
		t.Fatalf("API without a handler = %s (%v), want a 503 JSON proxy response", out, err)
	}
}

// TestRouterSweepError checks that a failed sweep is an error for Lambda,
// so that the invocation is reported as failed.
func TestRouterSweepError(t *testing.T) {
	var got []routed
	payload, _ := os.ReadFile("events/scheduled.json")
	_, err := newFakeRouter(&got, errors.New("shard2: throttled")).Invoke(context.Background(), payload)
	if err == nil || err.Error() != "shard2: throttled" {
		t.Fatalf("err = %v, want the sweeper's error", err)
	}
}
