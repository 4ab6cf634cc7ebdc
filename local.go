package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// queueAPI is what the local stack needs from SQS to play Lambda's event
// source mapping and the team's callback Lambda.
type queueAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// lambdaHandler is the one method of the Router the local stack calls, the
// same one Lambda calls.
type lambdaHandler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Local runs the service on one machine the way AWS runs it: API Gateway
// with IAM auth in front of the handler, an EventBridge schedule, an SQS
// event source on the fire queue, and a consumer on the callback queue.
// Every event goes through Handler as raw JSON, exactly as in Lambda.
type Local struct {
	Handler  lambdaHandler
	Verifier *SigV4Verifier
	Queue    queueAPI
	// FireQueueURL and CallbackQueueURL are the queues to drain.
	FireQueueURL, CallbackQueueURL string
	// Region and Account fill in the ARNs of generated events.
	Region, Account string
	// SweepEvery is the interval between scheduled events. Default 1 minute.
	SweepEvery time.Duration
	// Timeouts end each invocation as Lambda's timeout of its function
	// would; zero, never.
	Timeouts FunctionTimeouts
	// PollWait is the SQS long-poll wait; under a second it is the pause
	// between short polls instead. `bootstrap local` uses 100 ms: moto's
	// long poll answers only when its wait ends, which would make firings
	// up to a second late. It bounds how
	// late the local stack sees a message that became visible.
	PollWait time.Duration
	Log      *slog.Logger
}

// FunctionTimeouts are the Lambda timeouts of the stack's functions.
type FunctionTimeouts struct {
	API, Sweep, Invoke time.Duration
}

// deployedTimeouts returns template.yaml's function timeouts. They bound
// how long a local invocation runs, as on Lambda: the fire queue's
// visibility timeout (six times the invoker's) relies on it, since a batch
// still running when its messages become visible again would be delivered
// twice. TestLocalTimeoutsMatchTemplate checks them.
func deployedTimeouts() FunctionTimeouts {
	return FunctionTimeouts{API: 10 * time.Second, Sweep: 60 * time.Second, Invoke: 150 * time.Second}
}

// errTimedOut is what an invocation that ran out of time fails with.
var errTimedOut = errors.New("task timed out")

// invoke runs one event through the handler within limit (none when 0),
// and fails it, as Lambda does, when it runs out of time: whatever it
// answered then is not used.
func (l *Local) invoke(ctx context.Context, limit time.Duration, payload []byte) ([]byte, error) {
	if limit <= 0 {
		return l.Handler.Invoke(ctx, payload)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, limit, errTimedOut)
	defer cancel()
	out, err := l.Handler.Invoke(ctx, payload)
	if errors.Is(context.Cause(ctx), errTimedOut) {
		return nil, fmt.Errorf("%w after %s", errTimedOut, limit)
	}
	return out, err
}

// maxLocalBody is the largest request the local API Gateway reads; the
// handler enforces its own, smaller, limit.
const maxLocalBody = 1 << 20

// ServeHTTP is the local API Gateway: it checks SigV4, turns the request
// into a REST proxy event, invokes the handler, and writes its response.
func (l *Local) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLocalBody+1))
	if err != nil {
		writeError(w, Errorf(EINVALID, "cannot read request body"))
		return
	}
	if len(body) > maxLocalBody {
		writeError(w, Errorf(ETOOLARGE, "request body too large"))
		return
	}
	if err := l.Verifier.Verify(r, body); err != nil {
		writeError(w, Errorf(EFORBIDDEN, "%s", ErrorMessage(err)))
		return
	}
	payload, err := json.Marshal(l.proxyEvent(r, body))
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := l.invoke(r.Context(), l.Timeouts.API, payload)
	var resp events.APIGatewayProxyResponse
	if err == nil {
		err = json.Unmarshal(out, &resp)
	}
	if err != nil { // what API Gateway answers when the integration fails
		l.Log.Error("api handler failed", "error", err.Error())
		writeError(w, Errorf(EBADGATEWAY, "Internal server error"))
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		w.Header()[k] = vs
	}
	respBody := []byte(resp.Body)
	if resp.IsBase64Encoded {
		respBody, _ = base64.StdEncoding.DecodeString(resp.Body)
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(respBody)
}

// writeError writes err as the local API Gateway's answer.
func writeError(w http.ResponseWriter, err error) {
	resp := render(errorResponse(err))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	io.WriteString(w, resp.Body)
}

// proxyEvent builds the REST proxy event API Gateway would send for r.
// A REST API passes path as the client sent it, still percent-encoded, and
// the {proxy+} parameter decoded once; the API decodes path itself, once.
// (r.URL.Path is already decoded: passing it as path decoded twice, so
// /periodic/a%252Db read timer a-b and /periodic/a%2Fhistory a's history.)
func (l *Local) proxyEvent(r *http.Request, body []byte) events.APIGatewayProxyRequest {
	path := r.URL.EscapedPath()
	ev := events.APIGatewayProxyRequest{
		Resource:                        "/{proxy+}",
		Path:                            path,
		HTTPMethod:                      r.Method,
		Headers:                         map[string]string{},
		MultiValueHeaders:               map[string][]string{},
		QueryStringParameters:           map[string]string{},
		MultiValueQueryStringParameters: map[string][]string{},
		PathParameters:                  map[string]string{"proxy": strings.TrimPrefix(r.URL.Path, "/")},
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:    l.Account,
			RequestID:    newID(),
			Stage:        "local",
			HTTPMethod:   r.Method,
			Path:         "/local" + path,
			ResourcePath: "/{proxy+}",
			Identity: events.APIGatewayRequestIdentity{
				AccessKey: l.Verifier.Credentials.AccessKeyID,
				SourceIP:  hostOnly(r.RemoteAddr),
				UserArn:   fmt.Sprintf("arn:aws:iam::%s:user/local", l.Account),
				UserAgent: r.UserAgent(),
			},
		},
		Body: string(body),
	}
	for k, vs := range r.Header {
		ev.Headers[k] = vs[len(vs)-1]
		ev.MultiValueHeaders[k] = vs
	}
	for k, vs := range r.URL.Query() {
		ev.QueryStringParameters[k] = vs[len(vs)-1]
		ev.MultiValueQueryStringParameters[k] = vs
	}
	if !utf8.Valid(body) {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Run serves the API on ln and runs the schedule and the queue consumers
// until ctx ends.
func (l *Local) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){l.scheduleLoop, l.fireLoop, l.callbackLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	err := srv.Serve(ln)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// scheduleLoop plays the EventBridge rule: a scheduled event at start and
// then every SweepEvery.
func (l *Local) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(l.SweepEvery)
	defer t.Stop()
	for {
		l.sweepOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepOnce sends one scheduled event through the handler.
func (l *Local) sweepOnce(ctx context.Context) {
	ev := events.EventBridgeEvent{
		Version:    "0",
		ID:         newID(),
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  l.Account,
		Time:       time.Now().UTC().Truncate(time.Second),
		Region:     l.Region,
		Resources:  []string{fmt.Sprintf("arn:aws:events:%s:%s:rule/callclock-local-sweep", l.Region, l.Account)},
		Detail:     json.RawMessage(`{}`),
	}
	payload, _ := json.Marshal(ev)
	if _, err := l.invoke(ctx, l.Timeouts.Sweep, payload); err != nil && ctx.Err() == nil {
		l.Log.Error("sweep failed", "error", err.Error())
	}
}

// receive long-polls queueURL once; an error is logged and paced so that a
// stopped endpoint does not spin.
func (l *Local) receive(ctx context.Context, queueURL string) []sqstypes.Message {
	out, err := l.Queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    &queueURL,
		MaxNumberOfMessages:         10,
		WaitTimeSeconds:             int32(l.PollWait / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		if ctx.Err() == nil {
			l.Log.Error("receive failed", "queue", queueURL, "error", err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		return nil
	}
	if len(out.Messages) == 0 && l.PollWait < time.Second {
		// Sub-second polling (tests) is not a long poll; pace it.
		select {
		case <-ctx.Done():
		case <-time.After(l.PollWait):
		}
	}
	return out.Messages
}

// fireLoop plays Lambda's SQS event source mapping with
// ReportBatchItemFailures: it hands each batch to the handler and deletes
// the messages not reported as failed.
//
// Like Lambda, it runs several batches at once (up to 10 here): the
// invoker holds a message that arrives early until its instant, and one
// batch waiting must not hold back the next.
func (l *Local) fireLoop(ctx context.Context) {
	arn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", l.Region, l.Account, queueName(l.FireQueueURL))
	var inflight sync.WaitGroup
	slots := make(chan struct{}, 10)
	for ctx.Err() == nil {
		msgs := l.receive(ctx, l.FireQueueURL)
		if len(msgs) == 0 {
			continue
		}
		slots <- struct{}{}
		inflight.Add(1)
		go func() {
			defer func() { <-slots; inflight.Done() }()
			l.invokeBatch(ctx, msgs, arn)
		}()
	}
	inflight.Wait()
}

// invokeBatch hands one batch to the handler and deletes the messages it
// did not report as failed.
func (l *Local) invokeBatch(ctx context.Context, msgs []sqstypes.Message, arn string) {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		ev.Records[i] = sqsRecord(m, arn, l.Region)
	}
	payload, _ := json.Marshal(ev)
	out, err := l.invoke(ctx, l.Timeouts.Invoke, payload)
	var resp events.SQSEventResponse
	if err == nil {
		err = json.Unmarshal(out, &resp)
	}
	if err != nil { // the whole batch failed: SQS redelivers it all
		l.Log.Error("invoker failed", "error", err.Error())
		return
	}
	l.delete(ctx, l.FireQueueURL, settled(msgs, resp))
}

// settled are the messages of msgs that resp does not name as failed:
// what Lambda's event source deletes after the invocation.
func settled(msgs []sqstypes.Message, resp events.SQSEventResponse) []sqstypes.Message {
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var done []sqstypes.Message
	for _, m := range msgs {
		if !failed[aws.ToString(m.MessageId)] {
			done = append(done, m)
		}
	}
	return done
}

// callbackLoop plays the team's callback Lambda: it logs each message on
// the callback queue and deletes it.
func (l *Local) callbackLoop(ctx context.Context) {
	for ctx.Err() == nil {
		msgs := l.receive(ctx, l.CallbackQueueURL)
		for _, m := range msgs {
			attrs := []any{"messageId", aws.ToString(m.MessageId), "body", aws.ToString(m.Body)}
			for k, v := range m.MessageAttributes {
				attrs = append(attrs, k, aws.ToString(v.StringValue))
			}
			l.Log.Info("callback message", attrs...)
		}
		l.delete(ctx, l.CallbackQueueURL, msgs)
	}
}

func (l *Local) delete(ctx context.Context, queueURL string, msgs []sqstypes.Message) {
	if len(msgs) == 0 {
		return
	}
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle}
	}
	out, err := l.Queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &queueURL, Entries: entries})
	if err == nil && len(out.Failed) > 0 {
		err = fmt.Errorf("%d deletes failed", len(out.Failed))
	}
	if err != nil && ctx.Err() == nil {
		l.Log.Error("delete failed", "queue", queueURL, "error", err.Error())
	}
}

// sqsRecord is the Lambda event record for an SQS message.
func sqsRecord(m sqstypes.Message, arn, region string) events.SQSMessage {
	rec := events.SQSMessage{
		MessageId:         aws.ToString(m.MessageId),
		ReceiptHandle:     aws.ToString(m.ReceiptHandle),
		Body:              aws.ToString(m.Body),
		Md5OfBody:         aws.ToString(m.MD5OfBody),
		Attributes:        m.Attributes,
		MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSource:       "aws:sqs",
		EventSourceARN:    arn,
		AWSRegion:         region,
	}
	for k, v := range m.MessageAttributes {
		rec.MessageAttributes[k] = events.SQSMessageAttribute{StringValue: v.StringValue, DataType: aws.ToString(v.DataType)}
	}
	return rec
}

func queueName(url string) string { return url[strings.LastIndex(url, "/")+1:] }

// runLocal is `bootstrap local`.
func runLocal(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) int {
	fs := newFlagSet("local", "local [--addr HOST:PORT] [--sweep-every DURATION] [--log text|json|auto] [--metrics FILE|off]", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address the REST API listens on")
	every := fs.Duration("sweep-every", time.Minute, "interval between scheduled sweep events")
	output := addOutputFlags(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "bootstrap local: %v\n", err); return 1 }
	if *every < time.Second {
		return fail(errors.New("--sweep-every must be at least 1s"))
	}
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		return fail(errors.New("AWS_ENDPOINT_URL is not set: the local stack runs against a local endpoint such as moto_server (export AWS_ENDPOINT_URL=http://127.0.0.1:5000)"))
	}
	keyID, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if keyID == "" || secret == "" {
		return fail(errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set: the local API accepts requests signed with them"))
	}
	env, awsCfg, clients, err := loadEnv(ctx, "us-east-1")
	if err != nil {
		return fail(err)
	}
	clients = clients.forLocalEndpoint()
	cfg, err := provision(ctx, clients, DefaultStackNames, deployedQueues())
	if err != nil {
		return fail(fmt.Errorf("provision local stack at %s: %w", os.Getenv("AWS_ENDPOINT_URL"), err))
	}
	cfg.Shards, cfg.SecretPrefix, cfg.SecretTTL = env.Shards, env.SecretPrefix, env.SecretTTL
	cfg.AllowPrivateTargets = true // so that the demo can call localhost
	out, err := output.open(stderr, log)
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(err)
	}
	// Every part, as newRouter builds them, its metrics where --metrics says.
	router, _ := buildRouter(routerOptions{Config: cfg, Clients: clients, Log: out.Log, Metrics: out.Metrics})
	l := &Local{
		Handler:          router,
		Verifier:         NewSigV4Verifier(aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, awsCfg.Region),
		Queue:            clients.SQS,
		FireQueueURL:     cfg.FireQueueURL,
		CallbackQueueURL: cfg.CallbackQueueURL,
		Region:           awsCfg.Region,
		Account:          "123456789012",
		SweepEvery:       *every,
		Timeouts:         deployedTimeouts(),
		PollWait:         100 * time.Millisecond,
		Log:              out.Log,
	}
	out.Log.Info("callclock local stack ready", "api", "http://"+ln.Addr().String(), "region", awsCfg.Region,
		"endpoint", os.Getenv("AWS_ENDPOINT_URL"), "table", cfg.Table, "fireQueue", cfg.FireQueueURL,
		"callbackQueue", cfg.CallbackQueueURL, "sweepEvery", every.String(), "metrics", out.MetricsTo)
	if err := l.Run(ctx, ln); err != nil {
		return fail(err)
	}
	return 0
}
