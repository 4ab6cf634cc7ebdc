package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

// TestIntegrationLocalDynamoDBIsAtomic races what moto_server does not
// make atomic against a table of the test's own, through the clients the
// local stack uses: failing transactions (moto copies the table for each
// and puts the copy back when it fails) while other requests add items.
// With the SDK's retries off, every call must be answered as DynamoDB
// would, and every acknowledged write must stay. Without localClient,
// moto answers many of these transactions with a 500 ("dictionary changed
// size during iteration") and loses some of the acknowledged writes.
func TestIntegrationLocalDynamoDBIsAtomic(t *testing.T) {
	clients := motoClients(t, needMoto(t))
	// The same client with the SDK's retries off, so that a 500 shows.
	db := dynamodb.New(clients.DynamoDB.Options(), func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} })
	ctx := context.Background()
	table := uniqueNames(t).Table
	if err := ensureTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	item := func(id string) map[string]types.AttributeValue {
		it := timerKey(id)
		it["payload"] = &types.AttributeValueMemberS{Value: strings.Repeat("x", 100)}
		return it
	}
	// A table of some size makes moto's copy take long enough to race.
	for i := range 200 {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item(fmt.Sprint("fill-", i))}); err != nil {
			t.Fatal(err)
		}
	}

	const writers, perWriter, transactions = 4, 50, 40
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		unexpected []error
		acked      []string
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		unexpected = append(unexpected, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range transactions {
			_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{ConditionCheck: &types.ConditionCheck{TableName: &table, Key: timerKey("absent"), ConditionExpression: aws.String("attribute_exists(pk)")}},
				{Put: &types.Put{TableName: &table, Item: item("scratch")}},
			}})
			var tce *types.TransactionCanceledException
			if !errors.As(err, &tce) {
				fail(fmt.Errorf("transaction with a failing condition: %v, want TransactionCanceledException", err))
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := fmt.Sprintf("kept-%d-%d", w, i)
				if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item(id)}); err != nil {
					fail(fmt.Errorf("put %s: %v", id, err))
					continue
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, err := range unexpected {
		if i == 5 {
			t.Errorf("... and %d more", len(unexpected)-5)
			break
		}
		t.Error(err)
	}
	lost := 0
	for _, id := range acked {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: timerKey(id), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Item) == 0 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes are gone", lost, len(acked))
	}
}

// lostResponses is a DynamoDB HTTP client that lets each of the first n
// UpdateItem requests reach the endpoint and then answers it with a 500, as
// when a write is applied and its response is lost: the SDK retries it.
type lostResponses struct {
	next dynamodb.HTTPClient
	n    atomic.Int32
}

func (c *lostResponses) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if err != nil || req.Header.Get("X-Amz-Target") != "DynamoDB_20120810.UpdateItem" || c.n.Add(-1) < 0 {
		return resp, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	body := `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"response lost"}`
	return &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(bytes.NewReader([]byte(body))),
		ContentLength: int64(len(body)), Request: req}, nil
}

// TestIntegrationClaimAfterLostResponse claims an occurrence whose first
// UpdateItem is applied but answered with a 500, on moto_server: the SDK's
// retry finds the claim already there, and since it is this receive's own
// (its token), Claim reports it claimed rather than in progress or a
// duplicate (which would drop the occurrence). Another message's claim of
// it is still refused, and another receive of the same message is in
// progress until the lease ends.
func TestIntegrationClaimAfterLostResponse(t *testing.T) {
	store := motoStore(t)
	lossy := &lostResponses{}
	lossy.n.Store(1)
	store.DB = dynamodb.New(store.DB.(*dynamodb.Client).Options(), func(o *dynamodb.Options) {
		lossy.next = o.HTTPClient
		o.HTTPClient = lossy
	})
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 10, 44, 30, 0, time.UTC)
	now := at
	lease := now.Add(time.Minute)
	o := Occurrence{TimerID: "lost-response", At: at}
	first := Claimant{MessageID: "msg-1", Token: "receive-1"}
	claimed, err := store.Claim(ctx, o, first, now, lease)
	if err != nil || claimed != Claimed {
		t.Fatalf("claim whose first response was lost: %v, %v; want claimed", claimed, err)
	}
	if lossy.n.Load() >= 0 {
		t.Fatal("the first UpdateItem's response was not replaced: the test tested nothing")
	}
	if claimed, err := store.Claim(ctx, o, Claimant{MessageID: "msg-2", Token: "receive-2"}, now, lease); err != nil || claimed != ClaimDuplicate {
		t.Errorf("another message's claim: %v, %v; want a duplicate", claimed, err)
	}
	again := Claimant{MessageID: "msg-1", Token: "receive-3"}
	if claimed, err := store.Claim(ctx, o, again, now, lease); err != nil || claimed != ClaimInProgress {
		t.Errorf("the same message received again while the first receive delivers: %v, %v; want in progress", claimed, err)
	}
	if claimed, err := store.Claim(ctx, o, again, lease.Add(time.Second), lease.Add(time.Minute)); err != nil || claimed != Claimed {
		t.Errorf("the same message received again once the first receive's lease ended: %v, %v; want claimed", claimed, err)
	}
	if err := store.Record(ctx, o, LastFire{ScheduledAt: at, AttemptedAt: now, Attempt: 2, Outcome: OutcomeDelivered}, false, now); err != nil {
		t.Fatal(err)
	}
	if claimed, err := store.Claim(ctx, o, Claimant{MessageID: "msg-1", Token: "receive-4"}, lease.Add(time.Hour), lease.Add(2*time.Hour)); err != nil || claimed != ClaimDuplicate {
		t.Errorf("the same message again after delivery: %v, %v; want a duplicate", claimed, err)
	}
}

// sdkBody is a request body as the SDK makes them (smithy-go's safe read
// closer): once closed, it reports io.EOF, from WriteTo too. Its WriteTo,
// which net/http calls after sending the body to check that nothing
// follows, waits for Close, so that the SDK's Close, made as soon as Do
// returns, comes before that check every time: on a loaded machine it
// does some of the time.
type sdkBody struct {
	r      *bytes.Reader
	closed chan struct{}
	once   sync.Once
}

func newSDKBody(s string) *sdkBody {
	return &sdkBody{r: bytes.NewReader([]byte(s)), closed: make(chan struct{})}
}

func (b *sdkBody) Read(p []byte) (int, error) {
	select {
	case <-b.closed:
		return 0, io.EOF
	default:
		return b.r.Read(p)
	}
}

func (b *sdkBody) WriteTo(io.Writer) (int64, error) {
	<-b.closed
	return 0, io.EOF
}

func (b *sdkBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestLocalClientKeepsEarlyAnswers sends a request with a body like the
// SDK's to a server that answers as moto_server does: as soon as it has
// read the request, its headers first and its body apart. The client
// closes the request body as soon as Do returns, as the SDK does. Plain
// net/http then closes the connection before the answer's body has come
// (the SDK would retry the request, which moto has carried out); through
// localClient the answer arrives whole. The server holds the answer's body
// until the client drops the connection, or for a second.
func TestLocalClientKeepsEarlyAnswers(t *testing.T) {
	const answer = `{"Messages":[]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	send := func(c aws.HTTPClient) (string, error) {
		body := newSDKBody(`{"QueueUrl":"q","MaxNumberOfMessages":10}`)
		req, err := http.NewRequest("POST", srv.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(body.r.Len())
		resp, err := c.Do(req)
		body.Close() // as the SDK does once Do returns
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := send(srv.Client()); err != nil {
		t.Logf("plain net/http lost the answer, as expected: %v", err)
	} else {
		t.Logf("plain net/http read the answer %q: this Go no longer closes the connection under it", got)
	}
	if got, err := send(newLocalClient(srv.Client(), false)); err != nil || got != answer {
		t.Errorf("through localClient: %q, %v; want the whole answer", got, err)
	}
}

// TestLocalTimeoutsMatchTemplate checks the local stack's function
// timeouts against template.yaml's after the SAM transform.
func TestLocalTimeoutsMatchTemplate(t *testing.T) {
	tpl := deployedTemplate(t)
	want := map[string]float64{}
	for _, fn := range []string{"ApiFunction", "SweepFunction", "InvokeFunction"} {
		want[fn], _ = templateResource(t, tpl, fn)["Timeout"].(float64)
	}
	d := deployedTimeouts()
	got := map[string]float64{"ApiFunction": d.API.Seconds(), "SweepFunction": d.Sweep.Seconds(), "InvokeFunction": d.Invoke.Seconds()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("local function timeouts differ from template.yaml's (-template +local):\n%s", diff)
	}
}

// stuckHandler answers only once its invocation's context ends, as a
// function whose call to a stalled endpoint outlasts its timeout; it
// answers an SQS batch with no failures, an API event with a 200.
type stuckHandler struct{}

func (stuckHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	<-ctx.Done()
	if bytes.Contains(payload, []byte(`"Records"`)) {
		return []byte(`{"batchItemFailures":[]}`), nil
	}
	return []byte(`{"statusCode":200,"body":"{}"}`), nil
}

// deleteRecorder is an SQS that records deletes.
type deleteRecorder struct {
	mu      sync.Mutex
	deletes int
}

func (q *deleteRecorder) ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	return &sqs.ReceiveMessageOutput{}, nil
}

func (q *deleteRecorder) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deletes += len(in.Entries)
	return &sqs.DeleteMessageBatchOutput{}, nil
}

// TestLocalTimeouts runs invocations that outlast their function's
// timeout: as on Lambda, a timed-out SQS batch fails whole, so none of
// its messages is deleted (SQS hands them out again once their
// visibility timeout ends), and a timed-out API call is a 502.
func TestLocalTimeouts(t *testing.T) {
	logs := &syncBuffer{}
	q := &deleteRecorder{}
	l := &Local{Handler: stuckHandler{}, Queue: q, Verifier: verifierAt(0),
		FireQueueURL: "http://127.0.0.1:1/123456789012/fire", Region: "us-east-1", Account: "123456789012",
		Timeouts: FunctionTimeouts{API: time.Millisecond, Invoke: time.Millisecond},
		Log:      slog.New(slog.NewJSONHandler(logs, nil))}
	msgs := []sqstypes.Message{{MessageId: aws.String("m-1"), ReceiptHandle: aws.String("r-1"), Body: aws.String(`{}`)}}
	l.invokeBatch(context.Background(), msgs, "arn:aws:sqs:us-east-1:123456789012:fire")
	if q.deletes != 0 {
		t.Errorf("a timed-out batch deleted %d messages, want none", q.deletes)
	}
	if !strings.Contains(logs.String(), "task timed out after 1ms") {
		t.Errorf("no timeout logged: %s", logs)
	}

	req, _ := signed(t, sigGet)
	rec := httptest.NewRecorder()
	l.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadGateway {
		t.Errorf("timed-out API call: %d %s, want 502", rec.Code, rec.Body)
	}
}

// TestLocalProxyEventPath: the local stack passes path as API Gateway's
// REST API does, percent-encoded as the client sent it, with the
// {proxy+} parameter decoded once.
func TestLocalProxyEventPath(t *testing.T) {
	t.Parallel()
	l := &Local{Verifier: verifierAt(0), Account: "123456789012"}
	type paths struct{ Path, Proxy, ContextPath string }
	tests := []struct {
		target string
		want   paths
	}{
		{"/periodic/auth-base", paths{"/periodic/auth-base", "periodic/auth-base", "/local/periodic/auth-base"}},
		{"/periodic/auth%252Dbase", paths{"/periodic/auth%252Dbase", "periodic/auth%2Dbase", "/local/periodic/auth%252Dbase"}},
		{"/periodic/auth-base%2Fhistory", paths{"/periodic/auth-base%2Fhistory", "periodic/auth-base/history", "/local/periodic/auth-base%2Fhistory"}},
		{"/periodic/a%3Ab", paths{"/periodic/a%3Ab", "periodic/a:b", "/local/periodic/a%3Ab"}},
	}
	for _, tt := range tests {
		ev := l.proxyEvent(httptest.NewRequest(http.MethodGet, "http://127.0.0.1:3000"+tt.target, nil), nil)
		got := paths{ev.Path, ev.PathParameters["proxy"], ev.RequestContext.Path}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("GET %s: event paths (-want +got):\n%s", tt.target, diff)
		}
	}
}

// TestLocalPathsDecodedOnce: through the local stack, an escaped escape
// or an escaped "/" does not reach another timer or route, and the ids
// . and .. are refused.
func TestLocalPathsDecodedOnce(t *testing.T) {
	t.Parallel()
	a := newTestAPI(sigSignedAt, 1)
	if resp := a.call(t, http.MethodPut, "/periodic/auth-base", `{"timerCallbackData":1}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT auth-base: %d %s", resp.StatusCode, resp.Body)
	}
	l := &Local{Handler: &Router{API: a}, Verifier: verifierAt(0), Account: "123456789012", Log: a.Log}
	got := map[string]string{}
	for _, path := range []string{"/periodic/auth-base", "/periodic/auth%252Dbase", "/periodic/auth-base%2Fhistory",
		"/periodic/auth-base/history", "/periodic/%2E", "/periodic/%2E%2E"} {
		r, _ := signed(t, sigReq{method: http.MethodGet, target: "http://api.example" + path})
		rec := httptest.NewRecorder()
		l.ServeHTTP(rec, r)
		var body struct {
			ID, TimerID string
			Error       struct{ Code string }
		}
		json.Unmarshal(rec.Body.Bytes(), &body)
		got[path] = strings.TrimSpace(http.StatusText(rec.Code) + " " + body.ID + body.TimerID + body.Error.Code)
	}
	want := map[string]string{
		"/periodic/auth-base":           "OK auth-base",
		"/periodic/auth%252Dbase":       "Bad Request invalid",
		"/periodic/auth-base%2Fhistory": "Bad Request invalid",
		"/periodic/auth-base/history":   "OK auth-base",
		"/periodic/%2E":                 "Bad Request invalid",
		"/periodic/%2E%2E":              "Bad Request invalid",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("responses (-want +got):\n%s", diff)
	}
}
