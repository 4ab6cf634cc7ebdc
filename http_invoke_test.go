package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-cmp/cmp"
)

// fakeParams is a parameterGetter.
type fakeParams func(ctx context.Context, in *ssm.GetParametersInput, opts ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)

// GetParameters calls f.
func (f fakeParams) GetParameters(ctx context.Context, in *ssm.GetParametersInput, opts ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	return f(ctx, in, opts...)
}

// paramStore is a fake Parameter Store holding values. It answers as SSM
// does (unknown names in InvalidParameters), fails the test on a call that
// does not decrypt or asks for more than ten names, and records the names
// of each call.
type paramStore struct {
	mu    sync.Mutex
	calls [][]string
}

// fake is the parameterGetter that answers from values.
func (p *paramStore) fake(t *testing.T, values map[string]string) fakeParams {
	return func(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
		if !aws.ToBool(in.WithDecryption) {
			t.Errorf("GetParameters(%v): WithDecryption is not true", in.Names)
		}
		if len(in.Names) > 10 {
			t.Errorf("GetParameters asked for %d names, SSM allows 10", len(in.Names))
		}
		p.mu.Lock()
		p.calls = append(p.calls, slices.Clone(in.Names))
		p.mu.Unlock()
		out := &ssm.GetParametersOutput{}
		for _, n := range in.Names {
			if v, ok := values[n]; ok {
				out.Parameters = append(out.Parameters, ssmtypes.Parameter{Name: aws.String(n), Value: aws.String(v)})
			} else {
				out.InvalidParameters = append(out.InvalidParameters, n)
			}
		}
		return out, nil
	}
}

// Calls returns the names asked for, one slice per call.
func (p *paramStore) Calls() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// noSecrets fails the test if the invoker asks SSM for anything.
func noSecrets(t *testing.T) fakeParams {
	return func(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
		t.Errorf("unexpected GetParameters(%v)", in.Names)
		return &ssm.GetParametersOutput{}, nil
	}
}

// noCallback fails the test if the invoker sends a callback message.
func noCallback(t *testing.T) sendFunc {
	return func(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
		t.Error("unexpected SendMessage")
		return &sqs.SendMessageOutput{}, nil
	}
}

// received is what a target saw of one request.
type received struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

// target is an httptest server on 127.0.0.1 that records every request and
// answers with the status respond returns.
type target struct {
	*httptest.Server
	mu  sync.Mutex
	got []received
}

// newTarget starts a target that answers what respond returns, closed with
// the test.
func newTarget(t *testing.T, respond func(w http.ResponseWriter, r *http.Request) int) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		tg.got = append(tg.got, received{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone()})
		tg.mu.Unlock()
		w.WriteHeader(respond(w, r))
	}))
	t.Cleanup(tg.Close)
	return tg
}

// answer is a target's respond that always answers code.
func answer(code int) func(http.ResponseWriter, *http.Request) int {
	return func(http.ResponseWriter, *http.Request) int { return code }
}

// Received returns the requests the target saw, in order.
func (tg *target) Received() []received {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return slices.Clone(tg.got)
}

// testQueueURL is testInvoker's callback queue.
const testQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/callclock-callback"

// testInvoker is NewInvoker with a short timeout and a log written to log
// (discarded when nil).
func testInvoker(secrets parameterGetter, callback messageSender, log io.Writer) *Invoker {
	inv := NewInvoker(secrets, callback, testQueueURL)
	inv.Timeout = 5 * time.Second
	inv.Client = newHTTPClient(true) // the targets are httptest servers on 127.0.0.1
	if log == nil {
		log = io.Discard
	}
	inv.Log = slog.New(slog.NewJSONHandler(log, nil))
	return inv
}

// fire returns an SQS record whose body is m.
func fire(t *testing.T, messageID string, m FireMessage) events.SQSMessage {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{MessageId: messageID, Body: string(b)}
}

// httpFire is a fire message of timer id, version 1, at igAt, for an HTTP
// target.
func httpFire(id, method, url string) FireMessage {
	return FireMessage{TimerID: id, Version: 1, ScheduledAt: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC),
		HTTP: &HTTPTarget{Method: method, URL: url}}
}

// failures returns the failed message ids, sorted.
func failures(resp events.SQSEventResponse) []string {
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	sort.Strings(ids)
	return ids
}

func TestInvokerHTTPDelivery(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, answer(http.StatusOK))
	values := map[string]string{}
	for _, n := range []string{"path1", "path2", "q1", "token", "h1", "h2", "b1", "b2", "b3", "b4", "b5", "b6"} {
		values["/callclock/"+n] = "v-" + n
	}
	store := &paramStore{}
	inv := testInvoker(store.fake(t, values), noCallback(t), nil)

	msg := FireMessage{
		TimerID: "timer.1", Version: 4,
		// Not UTC: the headers must carry the instant in UTC.
		ScheduledAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600)),
		HTTP: &HTTPTarget{
			Method: "POST",
			URL:    tg.URL + "/hooks/aws-secret(/callclock/path1)/aws-secret(/callclock/path2)?k=aws-secret(/callclock/q1)&plain=1",
			Headers: map[string]string{
				"Authorization":   "Bearer aws-secret(/callclock/token)",
				"X-Pair":          "aws-secret(/callclock/h1):aws-secret(/callclock/h2)",
				"X-Plain":         "no secret here",
				"Content-Type":    "application/json",
				"User-Agent":      "spoofed",
				"Idempotency-Key": "spoofed",
			},
			Body: `{"a":"aws-secret(/callclock/b1)","b":"aws-secret(/callclock/b2)aws-secret(/callclock/b3)",` +
				`"c":["aws-secret(/callclock/b4)","aws-secret(/callclock/b5)","aws-secret(/callclock/b6)"],"again":"aws-secret(/callclock/token)"}`,
		},
	}
	resp := inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{fire(t, "m-1", msg)}})
	if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}

	got := tg.Received()
	if len(got) != 1 {
		t.Fatalf("target received %d requests, want 1", len(got))
	}
	type request struct {
		Method, Path, Query, Body string
		Header                    map[string]string
	}
	want := request{
		Method: "POST",
		Path:   "/hooks/v-path1/v-path2",
		Query:  "k=v-q1&plain=1",
		Body:   `{"a":"v-b1","b":"v-b2v-b3","c":["v-b4","v-b5","v-b6"],"again":"v-token"}`,
		Header: map[string]string{
			"Authorization":            "Bearer v-token",
			"X-Pair":                   "v-h1:v-h2",
			"X-Plain":                  "no secret here",
			"Content-Type":             "application/json",
			"User-Agent":               "callclock/" + Version,
			"Idempotency-Key":          "timer.1/2025-03-01T09:00:00Z",
			"X-Callclock-Timer-Id":     "timer.1",
			"X-Callclock-Scheduled-At": "2025-03-01T09:00:00Z",
		},
	}
	gotReq := request{Method: got[0].Method, Path: got[0].Path, Query: got[0].Query, Body: got[0].Body, Header: map[string]string{}}
	for k := range want.Header {
		gotReq.Header[k] = strings.Join(got[0].Header.Values(k), ", ")
	}
	if diff := cmp.Diff(want, gotReq); diff != "" {
		t.Errorf("request at target (-want +got):\n%s", diff)
	}

	// 12 distinct names (token is used twice): two calls, each name once.
	calls := store.Calls()
	var sizes []int
	var asked []string
	for _, c := range calls {
		sizes = append(sizes, len(c))
		asked = append(asked, c...)
	}
	if diff := cmp.Diff([]int{10, 2}, sizes); diff != "" {
		t.Errorf("GetParameters call sizes (-want +got):\n%s", diff)
	}
	sort.Strings(asked)
	if diff := cmp.Diff(slices.Sorted(maps.Keys(values)), asked); diff != "" {
		t.Errorf("names asked of SSM (-want +got):\n%s", diff)
	}
}

func TestInvokerHTTPStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		failed bool
	}{
		{http.StatusOK, false},
		{http.StatusNoContent, false},
		{http.StatusFound, true}, // the redirect is not followed
		{http.StatusNotFound, true},
		{http.StatusInternalServerError, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			elsewhere := newTarget(t, answer(http.StatusOK))
			tg := newTarget(t, func(w http.ResponseWriter, _ *http.Request) int {
				w.Header().Set("Location", elsewhere.URL+"/moved") // a 3xx the client could follow
				return tt.status
			})
			inv := testInvoker(noSecrets(t), noCallback(t), nil)

			resp := inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
				fire(t, "m-1", httpFire("t-1", "PUT", tg.URL+"/hook")),
			}})

			want := []string{}
			if tt.failed {
				want = []string{"m-1"}
			}
			if diff := cmp.Diff(want, failures(resp)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 1 {
				t.Errorf("target received %d requests, want 1", n)
			}
			if n := len(elsewhere.Received()); n != 0 {
				t.Errorf("redirect target received %d requests, want 0", n)
			}
		})
	}
}

func TestInvokerBatchReportsOnlyFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		poison string
	}{
		// %s is the target's /ok URL: a poison message must not be
		// delivered even when its target would answer 200.
		{"poison is not JSON", `{"timerId":"t-9","http":{"method":"POST","url":"%s"}`},
		{"poison has no timerId", `{"version":1,"scheduledAt":"2025-03-01T09:00:00Z","http":{"method":"POST","url":"%s"}}`},
		{"poison has empty timerId", `{"timerId":"","http":{"method":"POST","url":"%s"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t, func(_ http.ResponseWriter, r *http.Request) int {
				if r.URL.Path == "/fail" {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			})
			inv := testInvoker(noSecrets(t), noCallback(t), nil)
			inv.Concurrency = 2 // fewer slots than records

			resp := inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
				fire(t, "m-1", httpFire("t-1", "POST", tg.URL+"/ok")),
				fire(t, "m-2", httpFire("t-2", "POST", tg.URL+"/fail")),
				{MessageId: "m-3", Body: fmt.Sprintf(tt.poison, tg.URL+"/ok")},
				fire(t, "m-4", httpFire("t-4", "POST", tg.URL+"/ok")),
				fire(t, "m-5", httpFire("t-5", "POST", tg.URL+"/ok")),
			}})

			if diff := cmp.Diff([]string{"m-2", "m-3"}, failures(resp)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			var delivered []string
			for _, r := range tg.Received() {
				delivered = append(delivered, r.Path+" "+r.Header.Get("X-Callclock-Timer-Id"))
			}
			sort.Strings(delivered)
			if diff := cmp.Diff([]string{"/fail t-2", "/ok t-1", "/ok t-4", "/ok t-5"}, delivered); diff != "" {
				t.Errorf("requests at target (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInvokerEmptyBatch(t *testing.T) {
	t.Parallel()
	inv := testInvoker(noSecrets(t), noCallback(t), nil)
	for _, ev := range []events.SQSEvent{{}, {Records: []events.SQSMessage{}}} {
		b, err := json.Marshal(inv.Invoke(context.Background(), ev))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(`{"batchItemFailures":[]}`, string(b)); diff != "" {
			t.Errorf("response for %d records (-want +got):\n%s", len(ev.Records), diff)
		}
	}
}

func TestInvokerSecretResolutionFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secrets func(t *testing.T) fakeParams
	}{
		{"missing parameter", func(t *testing.T) fakeParams {
			return (&paramStore{}).fake(t, map[string]string{"/callclock/token": "v-token"})
		}},
		{"SSM error", func(t *testing.T) fakeParams {
			return func(context.Context, *ssm.GetParametersInput, ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
				return nil, errors.New("ThrottlingException: Rate exceeded")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t, answer(http.StatusOK))
			inv := testInvoker(tt.secrets(t), noCallback(t), nil)
			m := httpFire("t-1", "POST", tg.URL+"/hook?k=aws-secret(/callclock/missing)")
			m.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/callclock/token)"}

			resp := inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{fire(t, "m-1", m)}})

			if diff := cmp.Diff([]string{"m-1"}, failures(resp)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
		})
	}
}

func TestInvokerCallback(t *testing.T) {
	t.Parallel()
	// Odd spacing, key order and an escape: the callback must get these
	// bytes exactly as registered.
	const data = `{ "z": 1,  "a" : [ 1,2 ],"m":"\u00e9" , "n":null}`
	body := `{"timerId":"cb-1","version":3,"scheduledAt":"2025-03-01T10:00:00+01:00","timerCallbackData":` + data + `}`

	type sent struct {
		QueueURL, Body string
		Attributes     map[string]string // name -> "DataType:value"
	}
	tests := []struct {
		name       string
		sendErr    error
		wantFailed []string
	}{
		{name: "sent", wantFailed: []string{}},
		{name: "SendMessage fails", sendErr: errors.New("AWS.SimpleQueueService.NonExistentQueue"), wantFailed: []string{"m-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu  sync.Mutex
				got []sent
			)
			send := sendFunc(func(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
				s := sent{QueueURL: aws.ToString(in.QueueUrl), Body: aws.ToString(in.MessageBody), Attributes: map[string]string{}}
				for k, v := range in.MessageAttributes {
					s.Attributes[k] = aws.ToString(v.DataType) + ":" + aws.ToString(v.StringValue)
				}
				mu.Lock()
				got = append(got, s)
				mu.Unlock()
				return &sqs.SendMessageOutput{MessageId: aws.String("sqs-1")}, tt.sendErr
			})
			inv := testInvoker(noSecrets(t), send, nil)

			resp := inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m-1", Body: body}}})

			if diff := cmp.Diff(tt.wantFailed, failures(resp)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			want := []sent{{
				QueueURL: testQueueURL,
				Body:     data,
				Attributes: map[string]string{
					"IdempotencyKey": "String:cb-1/2025-03-01T09:00:00Z",
					"TimerId":        "String:cb-1",
					"ScheduledAt":    "String:2025-03-01T09:00:00Z",
				},
			}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInvokerDoesNotLogSecrets(t *testing.T) {
	t.Parallel()
	values := map[string]string{
		"/callclock/path":  "s3cr3t-path-value",
		"/callclock/query": "s3cr3t-query-value",
		"/callclock/user":  "s3cr3t-userinfo-value",
		"/callclock/token": "s3cr3t-token-value",
		"/callclock/body":  "s3cr3t-body-value",
		"/callclock/host":  "s3cr3t-host-value",
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	const secretPathQuery = "/hook/aws-secret(/callclock/path)?key=aws-secret(/callclock/query)"

	tests := []struct {
		name string
		url  func(tg *target) string
		// client, when set, replaces the invoker's HTTP client.
		client          *http.Client
		wantAtTarget    bool
		wantPlaceholder string
	}{
		{
			name:            "target answers 500",
			url:             func(tg *target) string { return tg.URL + secretPathQuery },
			wantAtTarget:    true,
			wantPlaceholder: "aws-secret(/callclock/path)",
		},
		{
			name:            "closed port",
			url:             func(*target) string { return "http://user:aws-secret(/callclock/user)@" + closedAddr + secretPathQuery },
			wantPlaceholder: "aws-secret(/callclock/query)",
		},
		{
			// The resolver is simulated, as the real one would need DNS:
			// its error names the host, as "lookup HOST: no such host".
			name: "host does not resolve",
			url: func(*target) string {
				return "http://aws-secret(/callclock/host).example.test" + secretPathQuery
			},
			client: &http.Client{Transport: &http.Transport{
				DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
					host, _, _ := net.SplitHostPort(addr)
					return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
				},
			}},
			wantPlaceholder: "aws-secret(/callclock/host).example.test",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t, answer(http.StatusInternalServerError))
			var log bytes.Buffer
			inv := testInvoker((&paramStore{}).fake(t, values), noCallback(t), &log)
			if tt.client != nil {
				inv.Client = tt.client
			}
			m := httpFire("t-1", "POST", tt.url(tg))
			m.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/callclock/token)"}
			m.HTTP.Body = `{"password":"aws-secret(/callclock/body)"}`

			resp := inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{fire(t, "m-1", m)}})

			if diff := cmp.Diff([]string{"m-1"}, failures(resp)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if tt.wantAtTarget {
				// The secrets were live: the target got them.
				got := tg.Received()
				if len(got) != 1 || got[0].Path != "/hook/"+values["/callclock/path"] {
					t.Fatalf("target received %+v, want one request with the path secret", got)
				}
			}
			logged := log.String()
			for name, v := range values {
				if strings.Contains(logged, v) {
					t.Errorf("log contains the value of %s:\n%s", name, logged)
				}
			}
			if !strings.Contains(logged, tt.wantPlaceholder) {
				t.Errorf("log does not name the placeholder %s:\n%s", tt.wantPlaceholder, logged)
			}
		})
	}
}
