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
	cfg, err := provision(context.Background(), clients, uniqueNames(t), 30)
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
		{"events/api-put.json", func(out string) bool { return apiStatus(out) == 200 && strings.Contains(out, `\"version\":2`) }},
		{"events/api-get.json", func(out string) bool {
			return apiStatus(out) == 200 && strings.Contains(out, `\"timeShardId\":\"45:fee5f544`)
		}},
		{"events/scheduled.json", func(out string) bool { return strings.HasPrefix(out, `{"shards":2,`) }},
		{"events/sqs.json", func(out string) bool { return out == "{\"batchItemFailures\":[]}\n" }},
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
