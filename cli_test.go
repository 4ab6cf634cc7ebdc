package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// runCLI runs the command line with args and returns exit code, stdout and
// stderr.
func runCLI(args []string, stdin string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, log)
	return code, stdout.String(), stderr.String()
}

// TestCLIUsage checks -h and bad arguments: usage on -h with exit 0, a
// message and exit 2 for what is not understood.
func TestCLIUsage(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"-h"}, 0, "bootstrap invoke [-e FILE]"},
		{[]string{}, 2, "bootstrap local [flags]"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"invoke", "-h"}, 0, "usage: bootstrap invoke [-e FILE]"},
		{[]string{"local", "-h"}, 0, "-sweep-every"},
		{[]string{"invoke", "-x"}, 2, "flag provided but not defined: -x"},
		{[]string{"invoke", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"local", "--sweep-every", "soon"}, 2, "invalid value"},
		{[]string{"local", "--sweep-every", "10ms"}, 1, "--sweep-every must be at least 1s"},
		{[]string{"invoke", "-e", "events/does-not-exist.json"}, 1, "no such file"},
	}
	for _, tc := range tests {
		code, stdout, stderr := runCLI(tc.args, "")
		if code != tc.code || !strings.Contains(stdout+stderr, tc.contains) {
			t.Errorf("bootstrap %v = exit %d, out %q, err %q; want exit %d containing %q", tc.args, code, stdout, stderr, tc.code, tc.contains)
		}
	}
}

// TestIntegrationInvokeSamples runs `bootstrap invoke -e` on every sample
// event against moto_server, as the README tells a user to: the handler's
// response on stdout and exit 0, and the effects in DynamoDB and SQS.
func TestIntegrationInvokeSamples(t *testing.T) {
	endpoint := needMoto(t)
	clients := motoClients(t, endpoint)
	cfg, err := provision(context.Background(), clients, uniqueNames(t), deployedQueues())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"TABLE_NAME": cfg.Table, "FIRE_QUEUE_URL": cfg.FireQueueURL, "CALLBACK_QUEUE_URL": cfg.CallbackQueueURL, "SHARDS": "2",
	} {
		t.Setenv(k, v)
	}
	apiStatus := func(out string) int {
		var resp events.APIGatewayProxyResponse
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("not a proxy response: %q", out)
		}
		return resp.StatusCode
	}
	steps := []struct {
		file  string
		check func(out string) bool
	}{
		{"events/api-put.json", func(out string) bool { return apiStatus(out) == 201 }},
		{"events/api-get.json", func(out string) bool {
			return apiStatus(out) == 200 && strings.Contains(out, `\"timeShardId\":\"45:fee5f544`)
		}},
		{"events/scheduled.json", func(out string) bool { return strings.HasPrefix(out, `{"minutes":`) }},
		// The sample occurrence is of version 1, the timer's: delivered.
		{"events/sqs.json", func(out string) bool { return out == "{\"batchItemFailures\":[]}\n" }},
		// The same message again: already claimed, not delivered twice.
		{"events/sqs.json", func(out string) bool { return out == "{\"batchItemFailures\":[]}\n" }},
		{"events/api-put.json", func(out string) bool { return apiStatus(out) == 200 && strings.Contains(out, `\"version\":2`) }},
		{"events/api-delete.json", func(out string) bool { return apiStatus(out) == 200 }},
		{"events/api-delete.json", func(out string) bool { return apiStatus(out) == 404 }},
	}
	for _, s := range steps {
		code, stdout, stderr := runCLI([]string{"invoke", "-e", s.file}, "")
		if code != 0 || !s.check(stdout) {
			t.Fatalf("bootstrap invoke -e %s = exit %d\nstdout %s\nstderr %s", s.file, code, stdout, stderr)
		}
	}

	// The SQS sample is a callback occurrence: its data is now on the
	// callback queue, unchanged.
	out, err := clients.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: &cfg.CallbackQueueURL, MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var bodies, keys []string
	for _, m := range out.Messages {
		bodies = append(bodies, aws.ToString(m.Body))
		keys = append(keys, aws.ToString(m.MessageAttributes["IdempotencyKey"].StringValue))
	}
	want := `{"version":1,"id":"fee5f544-af54-4ec3-9631-32f0d8d88309","worktype":"poll a third party API"}`
	if diff := cmp.Diff([]string{want}, bodies); diff != "" {
		t.Errorf("callback queue bodies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"fee5f544-af54-4ec3-9631-32f0d8d88309/2026-11-22T09:45:00Z"}, keys); diff != "" {
		t.Errorf("idempotency keys (-want +got):\n%s", diff)
	}

	// Standard input works as -e does, and a bad event is exit 1 with the
	// reason on stderr.
	get, _ := os.ReadFile("events/api-get.json")
	if code, stdout, _ := runCLI([]string{"invoke"}, string(get)); code != 0 || apiStatus(stdout) != 404 {
		t.Errorf("invoke from stdin = exit %d, %s; want exit 0 and a 404 response", code, stdout)
	}
	if code, stdout, stderr := runCLI([]string{"invoke"}, `{"hello":"world"}`); code != 1 || stdout != "" || !strings.Contains(stderr, "unrecognised event with keys [hello]") {
		t.Errorf("invoke of an unknown event = exit %d, out %q, err %q", code, stdout, stderr)
	}
}

// TestCLISchedule checks `bootstrap schedule`: occurrences in the
// schedule's zone, nothing and exit 0 when there is none, the reason and
// exit 2 for anything invalid.
func TestCLISchedule(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"spring forward skips the missing 02:30", []string{"cron(30 2 * * ? *)", "--tz", "America/New_York", "--from", "2026-03-07T00:00:00Z", "--count", "3"}, 0,
			"2026-03-07T02:30:00-05:00\n2026-03-09T02:30:00-04:00\n2026-03-10T02:30:00-04:00\n", ""},
		{"fall back fires once, flags first", []string{"--tz", "America/New_York", "--count", "3", "--from", "2026-10-31T00:00:00Z", "cron(30 1 * * ? *)"}, 0,
			"2026-10-31T01:30:00-04:00\n2026-11-01T01:30:00-04:00\n2026-11-02T01:30:00-05:00\n", ""},
		{"default from is now, default count 10", []string{"cron(0 10 * * ? *)"}, 0,
			"2026-11-22T10:00:00Z\n2026-11-23T10:00:00Z\n2026-11-24T10:00:00Z\n2026-11-25T10:00:00Z\n2026-11-26T10:00:00Z\n" +
				"2026-11-27T10:00:00Z\n2026-11-28T10:00:00Z\n2026-11-29T10:00:00Z\n2026-11-30T10:00:00Z\n2026-12-01T10:00:00Z\n", ""},
		{"rate anchored at start", []string{"rate(90 minutes)", "--start", "2026-11-22T08:00:00Z", "--count", "2"}, 0,
			"2026-11-22T09:30:00Z\n2026-11-22T11:00:00Z\n", ""},
		{"end bound", []string{"cron(0 * * * ? *)", "--end", "2026-11-22T12:00:00Z"}, 0,
			"2026-11-22T10:00:00Z\n2026-11-22T11:00:00Z\n", ""},
		{"one-shot in a zone", []string{"at(2026-12-24T18:00:00)", "--tz", "Asia/Kathmandu"}, 0, "2026-12-24T18:00:00+05:45\n", ""},
		{"no future occurrence", []string{"at(2020-01-01T00:00:00)"}, 0, "", ""},
		{"never", []string{"cron(0 0 30 2 ? *)"}, 0, "", ""},
		{"bad field", []string{"cron(0 0 32 * ? *)"}, 2, "", `day-of-month "32": 32 is outside 1-31`},
		{"bad zone", []string{"cron(0 0 * * ? *)", "--tz", "Mars/Olympus"}, 2, "", `timezone "Mars/Olympus" is not a known IANA zone`},
		{"bad from", []string{"rate(5 minutes)", "--from", "yesterday"}, 2, "", `--from "yesterday" is not an RFC 3339 instant`},
		{"bad count", []string{"rate(5 minutes)", "--count", "0"}, 2, "", "--count must be from 1 to 1000"},
		{"unquoted expression", []string{"cron(0", "9", "?"}, 2, "", `unexpected argument "9"`},
		{"no expression", []string{"--tz", "UTC"}, 2, "", "usage: bootstrap schedule EXPR"},
		{"help", []string{"-h"}, 0, "", "usage: bootstrap schedule EXPR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runSchedule(tc.args, now, &stdout, &stderr)
			if code != tc.code || stdout.String() != tc.stdout || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("bootstrap schedule %q = exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout %q, stderr containing %q",
					tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
