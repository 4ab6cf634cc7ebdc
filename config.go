package main

import (
	"context"
	"fmt"
	"log/slog"
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
// Lambda function of the stack gets only the variables it needs; a part
// whose variables are missing is simply not built.
type Config struct {
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
	// (SECRET_PREFIX). Default "/callclock/".
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
		Table:              getenv("TABLE_NAME"),
		FireQueueURL:       getenv("FIRE_QUEUE_URL"),
		CallbackQueueURL:   getenv("CALLBACK_QUEUE_URL"),
		Shards:             4,
		SecretPrefix:       "/callclock/",
		DeadLetterQueueURL: getenv("FIRE_DLQ_URL"),
		SecretTTL:          30 * time.Second,
	}
	switch v := getenv("ALLOW_PRIVATE_TARGETS"); v {
	case "", "false", "0":
	case "true", "1":
		c.AllowPrivateTargets = true
	default:
		return c, fmt.Errorf("ALLOW_PRIVATE_TARGETS must be true or false, not %q", v)
	}
	if s := getenv("SECRET_CACHE_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 3600 {
			return c, fmt.Errorf("SECRET_CACHE_SECONDS must be a whole number from 0 to 3600, not %q", s)
		}
		c.SecretTTL = time.Duration(n) * time.Second
	}
	if s := getenv("SHARDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return c, fmt.Errorf("SHARDS must be a whole number from 1 to 100, not %q", s)
		}
		c.Shards = n
	}
	if p := getenv("SECRET_PREFIX"); p != "" {
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || len(p) < 3 {
			return c, fmt.Errorf("SECRET_PREFIX must start and end with '/' and name a path, not %q", p)
		}
		c.SecretPrefix = p
	}
	return c, nil
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

// newRouter wires the parts that cfg configures into one Router.
func newRouter(cfg Config, c awsClients, log *slog.Logger) *Router {
	r := &Router{}
	var store *Store
	if cfg.Table != "" {
		store = NewStore(c.DynamoDB, cfg.Table)
		api := NewAPI(store)
		api.Shards, api.SecretPrefix, api.Log = cfg.Shards, cfg.SecretPrefix, log
		if cfg.FireQueueURL != "" {
			api.Fire, api.FireQueueURL = c.SQS, cfg.FireQueueURL
		}
		r.API = api
		if cfg.FireQueueURL != "" {
			sw := NewSweeper(store, c.SQS, cfg.FireQueueURL)
			sw.Shards, sw.Log, sw.Metrics = cfg.Shards, log, NewMetrics(os.Stdout)
			r.Sweeper = sw
		}
	}
	if cfg.CallbackQueueURL != "" {
		inv := NewInvoker(c.SSM, c.SQS, cfg.CallbackQueueURL)
		inv.Log, inv.SecretPrefix, inv.SecretTTL = log, cfg.SecretPrefix, cfg.SecretTTL
		inv.Metrics = NewMetrics(os.Stdout)
		inv.Client = newHTTPClient(cfg.AllowPrivateTargets)
		inv.Visibility, inv.FireQueueURL, inv.DeadLetterQueueURL = c.SQS, cfg.FireQueueURL, cfg.DeadLetterQueueURL
		if store != nil {
			inv.Timers = store
		}
		r.Invoker = inv
	}
	return r
}
