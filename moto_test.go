package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// motoProcess is one moto_server shared by every integration test of this
// test binary, started on first use on a free loopback port.
type motoProcess struct {
	once sync.Once
	cmd  *exec.Cmd
	url  string
	err  error
}

func (m *motoProcess) start() (string, error) {
	m.once.Do(func() {
		bin, err := exec.LookPath("moto_server")
		if err != nil {
			m.err = fmt.Errorf("moto_server not on PATH (it comes with `pip install 'moto[server]'`)")
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			m.err = err
			return
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		m.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the shim forks python; stop both
		if m.err = m.cmd.Start(); m.err != nil {
			return
		}
		m.url = fmt.Sprintf("http://127.0.0.1:%d", port)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if resp, err := http.Get(m.url + "/moto-api/data.json"); err == nil {
				resp.Body.Close()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		m.err = fmt.Errorf("moto_server did not answer on %s within 60s", m.url)
	})
	return m.url, m.err
}

func (m *motoProcess) stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		m.cmd.Wait()
	}
}

var moto motoProcess

func TestMain(m *testing.M) {
	code := m.Run()
	moto.stop()
	os.Exit(code)
}

// needMoto returns the endpoint of the shared moto_server. Without one the
// test is skipped, except under CI, where it fails: CI must run every
// integration test.
func needMoto(t *testing.T) string {
	t.Helper()
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("integration test skipped in -short mode")
	}
	url, err := moto.start()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("integration tests need moto_server under CI: %v", err)
		}
		t.Skipf("integration test skipped: %v", err)
	}
	return url
}

// testCreds are the static credentials tests sign with and moto accepts.
var testCreds = aws.Credentials{AccessKeyID: "AKIDCALLCLOCKTEST", SecretAccessKey: "callclock-test-secret"}

// motoClients returns real SDK clients pointed at endpoint, DynamoDB's one
// request at a time, as the local stack's are (see localClient).
func motoClients(t *testing.T, endpoint string) awsClients {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return testCreds, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	c := awsClients{DynamoDB: dynamodb.NewFromConfig(cfg), SQS: sqs.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg)}
	return c.forLocalEndpoint() // as `bootstrap local` does
}

// uniqueNames gives each test its own table and queues in the shared moto.
func uniqueNames(t *testing.T) StackNames {
	base := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	base = fmt.Sprintf("%s-%d", base, time.Now().UnixNano()%1e9)
	return StackNames{Table: base + "-timers", FireQueue: base + "-fire", CallbackQueue: base + "-callback"}
}

// motoStack provisions a table and queues of the test's own on the shared
// moto_server and returns the clients and the Config naming them. The
// queues are template.yaml's (deployedQueues), except that a
// visibilitySeconds above 0 replaces both queues' visibility timeouts, for
// a test that waits for a message to be handed out again.
func motoStack(t *testing.T, visibilitySeconds int) (awsClients, Config) {
	t.Helper()
	clients := motoClients(t, needMoto(t))
	queues := deployedQueues()
	if visibilitySeconds > 0 {
		queues.Fire.VisibilitySeconds, queues.Callback.VisibilitySeconds = visibilitySeconds, visibilitySeconds
	}
	cfg, err := provision(context.Background(), clients, uniqueNames(t), queues)
	if err != nil {
		t.Fatal(err)
	}
	return clients, cfg
}

// putSecret stores a SecureString parameter on moto_server.
func putSecret(t *testing.T, c awsClients, name, value string) {
	t.Helper()
	if _, err := c.SSM.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(name),
		Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

// startLocal serves router as the local stack does (SigV4 with testCreds,
// the template's Lambda timeouts,
// the fire and callback queues of cfg polled every 100 ms, no scheduled
// sweeps but the one at start) until ctx ends. It returns the API's base
// URL and a channel that yields Run's result.
func startLocal(t *testing.T, ctx context.Context, router *Router, cfg Config, clients awsClients, log *slog.Logger) (string, <-chan error) {
	t.Helper()
	local := &Local{Handler: router, Verifier: NewSigV4Verifier(testCreds, "us-east-1"), Queue: clients.SQS,
		FireQueueURL: cfg.FireQueueURL, CallbackQueueURL: cfg.CallbackQueueURL, Region: "us-east-1",
		Account: "123456789012", SweepEvery: time.Hour, PollWait: 100 * time.Millisecond, Log: log,
		Timeouts: deployedTimeouts()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- local.Run(ctx, ln) }()
	return "http://" + ln.Addr().String(), done
}

// motoStore is a Store on a table of the test's own on moto_server.
func motoStore(t *testing.T) *Store {
	t.Helper()
	clients := motoClients(t, needMoto(t))
	table := uniqueNames(t).Table
	if err := ensureTable(context.Background(), clients.DynamoDB, table); err != nil {
		t.Fatal(err)
	}
	return NewStore(clients.DynamoDB, table)
}
