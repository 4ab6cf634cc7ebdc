// Command bootstrap is callclock: one binary that is the Lambda handler for
// the REST API, the sweeper and the invoker, and, off Lambda, the command
// line that runs them locally.
package main

import (
	"context"
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

// lambdaRouter builds the router from the function's environment.
func lambdaRouter(ctx context.Context, log *slog.Logger) (*Router, error) {
	cfg, _, clients, err := loadEnv(ctx, "")
	if err != nil {
		return nil, err
	}
	return newRouter(cfg, clients, log), nil
}
