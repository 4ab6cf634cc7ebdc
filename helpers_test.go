package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Test helpers that tests of several files share: one of each.

// syncBuffer is a log sink the local stack's goroutines can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testClock is a settable clock for the parts whose "now" a test drives.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

func (c *testClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

func (c *testClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func newTestClock(t time.Time) *testClock { c := &testClock{}; c.Set(t); return c }

// signedDo sends a request signed with SigV4 for execute-api, as curl
// --aws-sigv4 or an SDK client would, and returns status and body.
func signedDo(t *testing.T, creds aws.Credentials, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256([]byte(body))
	if creds.AccessKeyID != "" {
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ptrTo returns a pointer to a copy of v.
func ptrTo[T any](v T) *T { return &v }

// Lines decodes every log line.
func (l *syncBuffer) Lines(t *testing.T) []map[string]any {
	t.Helper()
	return logLines(t, l.String())
}

// logLines decodes every JSON log line of s.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		lines = append(lines, m)
	}
	return lines
}

// settledEntries are the delete entries of the messages a batch did not
// fail (settled), as Lambda's event source deletes them.
func settledEntries(msgs []sqstypes.Message, resp events.SQSEventResponse) []sqstypes.DeleteMessageBatchRequestEntry {
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range settled(msgs, resp) {
		del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
	}
	return del
}

// WithMsg returns the lines whose msg is msg.
func (l *syncBuffer) WithMsg(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range l.Lines(t) {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// sendFunc is a messageSender made of one function (the AWS SDK's
// testing advice): a test that needs only the answer to a call says it
// in place, with no type of its own.
type sendFunc func(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)

// SendMessage calls f.
func (f sendFunc) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return f(ctx, in, opts...)
}

// sqsSent is one SendMessage call.
type sqsSent struct {
	QueueURL, Body string
	Attributes     map[string]string // name -> "DataType:value"
}

// sqsSender is the tests' messageSender (the API's fire queue, the
// invoker's callback and dead-letter queues): it records every call and
// fails those to a queue listed in errs.
type sqsSender struct {
	mu   sync.Mutex
	errs map[string]error
	sent []sqsSent
}

// SendMessage records the message, and fails it with errs' error for its
// queue, if any.
func (s *sqsSender) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	m := sqsSent{QueueURL: aws.ToString(in.QueueUrl), Body: aws.ToString(in.MessageBody), Attributes: map[string]string{}}
	for k, v := range in.MessageAttributes {
		m.Attributes[k] = aws.ToString(v.DataType) + ":" + aws.ToString(v.StringValue)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	if err := s.errs[m.QueueURL]; err != nil {
		return nil, err
	}
	return &sqs.SendMessageOutput{MessageId: aws.String("sqs-" + strconv.Itoa(len(s.sent)))}, nil
}

// To returns the messages sent to queueURL.
func (s *sqsSender) To(queueURL string) []sqsSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sqsSent
	for _, m := range s.sent {
		if m.QueueURL == queueURL {
			out = append(out, m)
		}
	}
	return out
}

// All returns every message sent.
func (s *sqsSender) All() []sqsSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// sqsBatchRule is a rule of SQS's SendMessageBatch a call broke, and the
// error SQS answers it with.
type sqsBatchRule struct {
	Problem string
	Err     error
}

// sqsBatchRules checks in against the limits on which SQS refuses a whole
// SendMessageBatch call, as both batch fakes (the fire queue's swQueue,
// the callback queue's cbQueue) enforce them: 1-10 entries, ids unique and
// not empty, and at most 256 KiB of bodies and attributes in all. (An
// entry's own fault, such as its DelaySeconds, fails that entry only.)
func sqsBatchRules(in *sqs.SendMessageBatchInput) []sqsBatchRule {
	var broken []sqsBatchRule
	if n := len(in.Entries); n < 1 || n > sqsBatch {
		broken = append(broken, sqsBatchRule{fmt.Sprintf("%d entries (SQS takes 1-10)", n),
			&sqstypes.TooManyEntriesInBatchRequest{Message: aws.String("1 to 10 entries")}})
	}
	size, ids := 0, map[string]bool{}
	for _, e := range in.Entries {
		if id := aws.ToString(e.Id); ids[id] || id == "" {
			broken = append(broken, sqsBatchRule{fmt.Sprintf("entry id %q empty or repeated", id),
				&sqstypes.BatchEntryIdsNotDistinct{Message: aws.String("ids not distinct")}})
		} else {
			ids[id] = true
		}
		size += len(aws.ToString(e.MessageBody))
		for k, v := range e.MessageAttributes {
			size += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
		}
	}
	if size > maxBatchBytes {
		broken = append(broken, sqsBatchRule{fmt.Sprintf("%d bytes in all (SQS takes 256 KiB)", size),
			&sqstypes.BatchRequestTooLong{Message: aws.String("batch too long")}})
	}
	return broken
}

// sortedSizes is size of each call, sorted: what a fake's batches carried,
// whatever order they ran in.
func sortedSizes[T any](calls []T, size func(T) int) []int {
	var n []int
	for _, c := range calls {
		n = append(n, size(c))
	}
	slices.Sort(n)
	return n
}

// writeTestFile writes s to dir/name and returns its path.
func writeTestFile(t *testing.T, dir, name, s string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
