package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Config is what the binary reads from its environment at start. Each
// Lambda function of the stack names its part (CALLCLOCK_PART) and gets
// the variables that part needs.
type Config struct {
	// Part is the one part this function serves (CALLCLOCK_PART: api,
	// sweeper or invoker). Empty: every part whose settings are here (the
	// local stack, the command line).
	Part string
	// Table is the timer table (TABLE_NAME).
	Table string
	// FireQueueURL is the queue the sweeper fills and the invoker drains
	// (FIRE_QUEUE_URL); the sweeper is built only when it is set.
	FireQueueURL string
	// CallbackQueueURL receives callback data (CALLBACK_QUEUE_URL); the
	// invoker is built only when it is set.
	CallbackQueueURL string
	// Shards is the number of shards (SHARDS, 1-100). Default 4.
	Shards int
	// SecretPrefix is the SSM path aws-secret(...) names must lie under
	// (SECRET_PREFIX). Default DefaultSecretPrefix.
	SecretPrefix string
	// DeadLetterQueueURL receives occurrences whose retries ran out
	// (FIRE_DLQ_URL).
	DeadLetterQueueURL string
	// AllowPrivateTargets lets HTTP targets and webhooks be loopback or
	// private addresses (ALLOW_PRIVATE_TARGETS=true): for the local stack,
	// and for VPC deployments that call internal load balancers.
	AllowPrivateTargets bool
	// SecretTTL is how long the invoker reuses a resolved secret
	// (SECRET_CACHE_SECONDS, 0-3600). Default 30 seconds.
	SecretTTL time.Duration
}

// configFromEnv reads a Config through getenv and validates it.
func configFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Part:               getenv("CALLCLOCK_PART"),
		Table:              getenv("TABLE_NAME"),
		FireQueueURL:       getenv("FIRE_QUEUE_URL"),
		CallbackQueueURL:   getenv("CALLBACK_QUEUE_URL"),
		Shards:             DefaultShards,
		SecretPrefix:       DefaultSecretPrefix,
		DeadLetterQueueURL: getenv("FIRE_DLQ_URL"),
		SecretTTL:          30 * time.Second,
	}
	switch c.Part {
	case "", partAPI, partSweeper, partInvoker:
	default:
		return c, fmt.Errorf("CALLCLOCK_PART must be api, sweeper or invoker, not %q", c.Part)
	}
	switch v := getenv("ALLOW_PRIVATE_TARGETS"); v {
	case "", "false", "0":
	case "true", "1":
		c.AllowPrivateTargets = true
	default:
		return c, fmt.Errorf("ALLOW_PRIVATE_TARGETS must be true or false, not %q", v)
	}
	secs, err := intFromEnv(getenv, "SECRET_CACHE_SECONDS", 0, 3600, int(c.SecretTTL/time.Second))
	if err != nil {
		return c, err
	}
	c.SecretTTL = time.Duration(secs) * time.Second
	if c.Shards, err = intFromEnv(getenv, "SHARDS", 1, 100, c.Shards); err != nil {
		return c, err
	}
	if p := getenv("SECRET_PREFIX"); p != "" {
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || len(p) < 3 {
			return c, fmt.Errorf("SECRET_PREFIX must start and end with '/' and name a path, not %q", p)
		}
		c.SecretPrefix = p
	}
	return c, nil
}

// intFromEnv reads variable name as a whole number from lo to hi, or
// returns def when it is unset.
func intFromEnv(getenv func(string) string, name string, lo, hi, def int) (int, error) {
	s := getenv(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return def, fmt.Errorf("%s must be a whole number from %d to %d, not %q", name, lo, hi, s)
	}
	return n, nil
}

// availableParts are the parts whose settings c has: the API and the
// sweeper need the table (the sweeper the fire queue too), the invoker the
// callback queue.
func (c Config) availableParts() []string {
	var parts []string
	if c.Table != "" {
		parts = append(parts, partAPI)
		if c.FireQueueURL != "" {
			parts = append(parts, partSweeper)
		}
	}
	if c.CallbackQueueURL != "" {
		parts = append(parts, partInvoker)
	}
	return parts
}

// completeFor reports the first setting part needs that c lacks.
func (c Config) completeFor(part string) error {
	need := map[string][]struct{ name, value string }{
		partAPI:     {{"TABLE_NAME", c.Table}, {"FIRE_QUEUE_URL", c.FireQueueURL}},
		partSweeper: {{"TABLE_NAME", c.Table}, {"FIRE_QUEUE_URL", c.FireQueueURL}},
		partInvoker: {{"TABLE_NAME", c.Table}, {"FIRE_QUEUE_URL", c.FireQueueURL}, {"CALLBACK_QUEUE_URL", c.CallbackQueueURL}},
	}
	for _, v := range need[part] {
		if v.value == "" {
			return fmt.Errorf("CALLCLOCK_PART=%s needs %s", part, v.name)
		}
	}
	return nil
}

// awsClients are the SDK clients every part shares.
type awsClients struct {
	DynamoDB *dynamodb.Client
	SQS      *sqs.Client
	SSM      *ssm.Client
}

// loadAWS loads the SDK's standard configuration (credentials chain,
// AWS_REGION, AWS_ENDPOINT_URL for a local stack). A missing region falls
// back to us-east-1 only off Lambda, where the runtime always sets one.
func loadAWS(ctx context.Context, defaultRegion string) (aws.Config, awsClients, error) {
	// The sweeper keeps up to 64 calls in flight; the SDK's default pool
	// would keep only 10 idle connections per host and redial the rest.
	client := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 128
	})
	cfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(client))
	if err != nil {
		return cfg, awsClients{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	return cfg, awsClients{
		DynamoDB: dynamodb.NewFromConfig(cfg),
		SQS:      sqs.NewFromConfig(cfg),
		SSM:      ssm.NewFromConfig(cfg),
	}, nil
}

// forLocalEndpoint returns c with clients fit for a local endpoint such
// as moto_server, for each client whose endpoint is overridden
// (AWS_ENDPOINT_URL): every client sends its requests through localClient,
// and DynamoDB's go one at a time. `bootstrap local`, `bootstrap invoke`
// and the integration tests call it; Lambda's clients, on AWS itself,
// never go through it.
func (c awsClients) forLocalEndpoint() awsClients {
	if o := c.DynamoDB.Options(); aws.ToString(o.BaseEndpoint) != "" {
		c.DynamoDB = dynamodb.New(o, func(o *dynamodb.Options) { o.HTTPClient = newLocalClient(o.HTTPClient, true) })
	}
	if o := c.SQS.Options(); aws.ToString(o.BaseEndpoint) != "" {
		c.SQS = sqs.New(o, func(o *sqs.Options) { o.HTTPClient = newLocalClient(o.HTTPClient, false) })
	}
	if o := c.SSM.Options(); aws.ToString(o.BaseEndpoint) != "" {
		c.SSM = ssm.New(o, func(o *ssm.Options) { o.HTTPClient = newLocalClient(o.HTTPClient, false) })
	}
	return c
}

// localClient is the HTTP client of an SDK client whose endpoint is local.
// It mends two things that make moto_server unlike AWS.
//
// Lost responses. A local endpoint can answer a request before net/http
// has finished with its body: net/http, having sent the body, reads it
// once more to check that nothing follows, and the SDK closes the body as
// soon as Do returns; its closed body then reports io.EOF from WriteTo,
// which net/http takes for a failed write, and it closes the connection
// under the response. The SDK sees a broken response and retries a
// request moto has carried out: a ReceiveMessage whose messages then wait
// out their visibility timeout, a SendMessageBatch sent twice, a
// transaction applied twice. localClient gives net/http a copy of the body
// in memory, which the SDK's Close does not touch.
//
// Atomicity (DynamoDB only). moto serves each request on a thread of its
// own with no lock around a table, so what DynamoDB does atomically it
// does not: its TransactWriteItems copies the whole table and, when the
// transaction fails, puts that copy back, losing the writes other requests
// made (and moto acknowledged) meanwhile; and the copy fails ("dictionary
// changed size during iteration", a 500) when another request adds an
// item while it is taken. One request at a time makes every operation
// atomic, and costs little: moto, one Python process, runs about one
// request at a time anyway.
type localClient struct {
	next aws.HTTPClient
	// turn, when not nil, holds a token while a request is at the
	// endpoint; a channel, unlike a mutex, lets a request whose context
	// ends stop waiting, and serves the waiting ones in order.
	turn chan struct{}
}

func newLocalClient(next aws.HTTPClient, oneAtATime bool) *localClient {
	c := &localClient{next: next}
	if oneAtATime {
		c.turn = make(chan struct{}, 1)
	}
	return c
}

// Do sends req, once the requests before it have been answered when they
// go one at a time. moto has finished with its tables by the time it
// answers: it computes the whole response before it writes any of it.
func (c *localClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if c.turn != nil {
		select {
		case c.turn <- struct{}{}:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		defer func() { <-c.turn }()
	}
	return c.next.Do(req)
}

// loadEnv reads the Config and the SDK configuration from the process
// environment: what every entry point starts with.
func loadEnv(ctx context.Context, defaultRegion string) (Config, aws.Config, awsClients, error) {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		return cfg, aws.Config{}, awsClients{}, err
	}
	awsCfg, clients, err := loadAWS(ctx, defaultRegion)
	return cfg, awsCfg, clients, err
}
