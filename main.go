// Command bootstrap is callclock: one binary that is the Lambda handler for
// the REST API, the sweeper and the invoker, and, off Lambda, the command
// line that runs them locally.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		router, err := lambdaRouter(context.Background(), log)
		if err != nil {
			log.Error("init failed", "error", err.Error())
			os.Exit(1)
		}
		lambda.Start(router)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, log)
	stop()
	os.Exit(code)
}

// lambdaRouter builds the router from the function's environment: the
// part its CALLCLOCK_PART names (template.yaml sets one per function).
func lambdaRouter(ctx context.Context, log *slog.Logger) (*Router, error) {
	cfg, _, clients, err := loadEnv(ctx, "")
	if err != nil {
		return nil, err
	}
	return buildRouter(routerOptions{Config: cfg, Clients: clients, Log: log})
}

// The parts a function can serve, as CALLCLOCK_PART names them.
const (
	partAPI     = "api"
	partSweeper = "sweeper"
	partInvoker = "invoker"
)

// routerOptions is everything a Router's parts are built from.
type routerOptions struct {
	// Config says which parts (Config.Part; empty: every part it has the
	// settings for, as on the local stack and the command line) and
	// configures them.
	Config  Config
	Clients awsClients
	Log     *slog.Logger
	// Metrics receives the sweeper's and the invoker's metric records.
	// Default os.Stdout, where Lambda's log carries them to CloudWatch.
	Metrics io.Writer
}

// buildRouter builds the parts o's configuration names, each complete:
// a function whose part lacks a setting fails at init, not at its first
// event.
func buildRouter(o routerOptions) (*Router, error) {
	cfg, c := o.Config, o.Clients
	metrics := o.Metrics
	if metrics == nil {
		metrics = os.Stdout
	}
	parts := cfg.availableParts()
	if cfg.Part != "" {
		parts = []string{cfg.Part}
		if err := cfg.completeFor(cfg.Part); err != nil {
			return nil, err
		}
	}
	r := &Router{}
	var store *Store
	if cfg.Table != "" {
		store = NewStore(c.DynamoDB, cfg.Table)
	}
	for _, p := range parts {
		switch p {
		case partAPI:
			api := NewAPI(store)
			if store != nil {
				api.Limits = store
			}
			api.Shards, api.SecretPrefix, api.Log = cfg.Shards, cfg.SecretPrefix, o.Log
			if cfg.FireQueueURL != "" { // short-notice and manual fires
				api.Fire, api.FireQueueURL = c.SQS, cfg.FireQueueURL
			}
			r.API = api
		case partSweeper:
			sw := NewSweeper(store, c.SQS, cfg.FireQueueURL)
			sw.Log, sw.Metrics = o.Log, NewMetrics(metrics)
			r.Sweeper = sw
		case partInvoker:
			inv := NewInvoker(c.SSM, c.SQS, cfg.CallbackQueueURL)
			inv.CallbackBatch = c.SQS
			inv.Log, inv.SecretPrefix, inv.SecretTTL = o.Log, cfg.SecretPrefix, cfg.SecretTTL
			inv.Metrics = NewMetrics(metrics)
			inv.Client = newHTTPClient(cfg.AllowPrivateTargets)
			inv.Visibility, inv.FireQueueURL, inv.DeadLetterQueueURL = c.SQS, cfg.FireQueueURL, cfg.DeadLetterQueueURL
			if store != nil {
				inv.Timers, inv.Limits = store, store
			}
			r.Invoker = inv
		default:
			return nil, fmt.Errorf("no part %q", p)
		}
	}
	return r, nil
}

// newRouter is buildRouter of every part cfg has the settings for, as
// the local stack and the tests run them.
func newRouter(cfg Config, c awsClients, log *slog.Logger) *Router {
	cfg.Part = ""
	r, _ := buildRouter(routerOptions{Config: cfg, Clients: c, Log: log}) // no part named: nothing to fail
	return r
}
