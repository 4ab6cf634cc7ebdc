package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Version names this build in the User-Agent of every delivery.
const Version = "0.1.0"

// parameterGetter is the one SSM call the invoker makes.
type parameterGetter interface {
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, opts ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

// messageSender is the one SQS call the invoker makes.
type messageSender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Invoker delivers fire messages: an HTTP call for timers with a target,
// otherwise the timer's callback data as a message on the callback queue.
type Invoker struct {
	Secrets          parameterGetter
	Callback         messageSender
	CallbackQueueURL string
	// Client makes the HTTP calls. Default: newHTTPClient(), which does not
	// follow redirects and gives up connecting after 20 seconds.
	Client *http.Client
	// Timeout bounds one HTTP call, within the function's own deadline.
	// Default 25 seconds.
	Timeout time.Duration
	// Concurrency bounds the messages of a batch delivered at once. Default 10.
	Concurrency int
	// MaxEarly is how early a message may arrive and still be held until
	// its instant: the sweeper's rounding plus polling jitter. A message
	// earlier than that is delivered at once. Default 3 seconds.
	MaxEarly time.Duration
	// Log receives one line per delivery. Default slog.Default().
	Log *slog.Logger
}

// NewInvoker returns an Invoker with the defaults above.
func NewInvoker(secrets parameterGetter, callback messageSender, callbackQueueURL string) *Invoker {
	return &Invoker{Secrets: secrets, Callback: callback, CallbackQueueURL: callbackQueueURL,
		Client: newHTTPClient(), Timeout: 25 * time.Second, Concurrency: 10, MaxEarly: 3 * time.Second, Log: slog.Default()}
}

// newHTTPClient returns the client deliveries use: the seed's 20-second
// connect timeout, and redirects returned to us rather than followed, since
// a timer's target is exactly the URL its owner registered.
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 20 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Invoke delivers each message of an SQS batch and reports the ones that
// failed, so that SQS retries those and only those.
func (inv *Invoker) Invoke(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	var (
		mu    sync.Mutex
		resp  = events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		wg    sync.WaitGroup
		slots = make(chan struct{}, max(1, inv.Concurrency))
	)
	for _, rec := range ev.Records {
		wg.Add(1)
		slots <- struct{}{}
		go func(rec events.SQSMessage) {
			defer func() { <-slots; wg.Done() }()
			if err := inv.handle(ctx, rec); err != nil {
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				mu.Unlock()
			}
		}(rec)
	}
	wg.Wait()
	return resp
}

// handle delivers one message and logs the outcome.
func (inv *Invoker) handle(ctx context.Context, rec events.SQSMessage) error {
	var msg FireMessage
	if err := json.Unmarshal([]byte(rec.Body), &msg); err != nil || msg.TimerID == "" {
		// A poison message: reported as failed so that the queue's redrive
		// policy moves it to the dead-letter queue after a few receives.
		inv.Log.ErrorContext(ctx, "malformed fire message", "messageId", rec.MessageId)
		return Errorf(EINVALID, "malformed fire message")
	}
	// The sweeper rounds each message's delay down to the second, so a
	// message may arrive up to a second early: wait for its instant.
	if early := time.Until(msg.ScheduledAt); early > 0 && early <= inv.MaxEarly {
		if err := sleepCtx(ctx, early); err != nil {
			return err
		}
	}
	start := time.Now()
	status, err := inv.deliver(ctx, &msg)
	attrs := []any{"timerId", msg.TimerID, "scheduledAt", msg.ScheduledAt.UTC().Format(time.RFC3339),
		"latenessMs", start.Sub(msg.ScheduledAt).Milliseconds(), "durationMs", time.Since(start).Milliseconds(),
		"messageId", rec.MessageId, "receiveCount", rec.Attributes["ApproximateReceiveCount"]}
	if status != 0 {
		attrs = append(attrs, "status", status)
	}
	if err != nil {
		inv.Log.WarnContext(ctx, "delivery failed", append(attrs, "error", err.Error())...)
		return err
	}
	inv.Log.InfoContext(ctx, "delivered", attrs...)
	return nil
}

// deliver makes one delivery and returns the HTTP status, if any. Errors
// never contain a resolved secret: they name the placeholder's URL.
func (inv *Invoker) deliver(ctx context.Context, msg *FireMessage) (int, error) {
	if msg.HTTP == nil {
		_, err := inv.Callback.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl:    &inv.CallbackQueueURL,
			MessageBody: aws.String(string(msg.CallbackData)),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"IdempotencyKey": stringAttr(msg.IdempotencyKey()),
				"TimerId":        stringAttr(msg.TimerID),
				"ScheduledAt":    stringAttr(msg.ScheduledAt.UTC().Format(time.RFC3339)),
			},
		})
		if err != nil {
			return 0, fmt.Errorf("send callback message: %w", err)
		}
		return 0, nil
	}
	return inv.call(ctx, msg)
}

func stringAttr(v string) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

// call makes the HTTP request of msg's target, with secrets resolved now.
func (inv *Invoker) call(ctx context.Context, msg *FireMessage) (int, error) {
	target := msg.HTTP
	fields := []string{target.URL, target.Body}
	for _, v := range target.Headers {
		fields = append(fields, v)
	}
	secrets, err := inv.resolve(ctx, fields...)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, inv.Timeout)
	defer cancel()
	var body io.Reader
	if target.Body != "" {
		body = strings.NewReader(substitute(target.Body, secrets))
	}
	req, err := http.NewRequestWithContext(ctx, target.Method, substitute(target.URL, secrets), body)
	if err != nil {
		return 0, Errorf(EINVALID, "cannot build request for %s %s", target.Method, target.URL)
	}
	for k, v := range target.Headers {
		req.Header.Set(k, substitute(v, secrets))
	}
	req.Header.Set("User-Agent", "callclock/"+Version)
	req.Header.Set("Idempotency-Key", msg.IdempotencyKey())
	req.Header.Set("X-Callclock-Timer-Id", msg.TimerID)
	req.Header.Set("X-Callclock-Scheduled-At", msg.ScheduledAt.UTC().Format(time.RFC3339))
	resp, err := inv.Client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which may hold a secret; keep only
		// the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("%s %s: %s", target.Method, target.URL, redact(err.Error(), secrets))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("%s %s: status %d", target.Method, target.URL, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// resolve fetches the values of every aws-secret(...) in fields from SSM,
// ten names a call as GetParameters allows, decrypting SecureStrings.
func (inv *Invoker) resolve(ctx context.Context, fields ...string) (map[string]string, error) {
	seen := map[string]bool{}
	var names []string
	for _, f := range fields {
		for _, n := range secretNames(f) {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	values := make(map[string]string, len(names))
	for len(names) > 0 {
		chunk := names[:min(10, len(names))]
		names = names[len(chunk):]
		out, err := inv.Secrets.GetParameters(ctx, &ssm.GetParametersInput{Names: chunk, WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("resolve secrets: %w", err)
		}
		if len(out.InvalidParameters) > 0 {
			return nil, Errorf(EINVALID, "secret parameter %s does not exist", strings.Join(out.InvalidParameters, ", "))
		}
		for _, p := range out.Parameters {
			values[aws.ToString(p.Name)] = aws.ToString(p.Value)
		}
	}
	return values, nil
}

// substitute replaces each aws-secret(name) in s with its value.
func substitute(s string, secrets map[string]string) string {
	if len(secrets) == 0 {
		return s
	}
	return secretPattern.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := secrets[m[len("aws-secret("):len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// redact puts each secret value in s back to its placeholder, for text
// (such as a transport error) that may echo a resolved value.
func redact(s string, secrets map[string]string) string {
	// Longest values first: a value that contains another must not be
	// left partly visible by replacing the shorter one inside it.
	names := slices.SortedFunc(maps.Keys(secrets), func(a, b string) int { return len(secrets[b]) - len(secrets[a]) })
	for _, name := range names {
		if v := secrets[name]; v != "" {
			s = strings.ReplaceAll(s, v, "aws-secret("+name+")")
		}
	}
	return s
}
