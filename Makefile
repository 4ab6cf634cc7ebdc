# callclock: the one-command entry points. See README.md.

TESTFLAGS ?=
TEST_OUTPUT ?= test-output.txt

.PHONY: build run test lint precision precision-short precision-sweeper cost clean build-ApiFunction build-SweepFunction build-InvokeFunction

## build: compile the bootstrap binary for this machine
build:
	go build -o bootstrap .

## run: the whole service locally (moto_server + bootstrap local on 127.0.0.1:8080)
run:
	./scripts/run-local.sh

## test: unit and integration tests (integration tests start their own moto_server;
## TestIntegrationREADME runs the README's walk-through on ports 5000, 8080 and 9000).
## It prints a line per finished test and the failures' output at the end
## (scripts/test-progress.py; TESTFLAGS=-v prints everything as it comes), and
## writes the whole output, as go test -v prints it, to TEST_OUTPUT.
## The timeout is for the whole package: go test's default of 10 minutes is too
## short for the integration tests on a slow or busy machine. -parallel 4 (the
## default is the number of cores) because the longest parallel tests mostly
## wait (sweeps, a slow target, a rate limit, a spread window), not compute.
test:
	python3 scripts/test-progress.py --output "$(TEST_OUTPUT)" -race -count=1 -timeout 20m -parallel 4 $(TESTFLAGS) ./...

## precision: end-to-end firing precision on the local stack (p50/p99/max lateness);
## it prints its progress every 10 s while the timers fire
## precision-short: timers created 5-60 s before their instants, the deployed 60 s sweep
## precision-sweeper: timers 4-6 minutes out, found by the sweeper, the deployed 60 s sweep
precision:
	python3 scripts/precision.py
precision-short:
	python3 scripts/precision.py --timers 100 --lead 5 --spread 55 --sweep-every 60s
precision-sweeper:
	python3 scripts/precision.py --timers 100 --lead 240 --spread 120 --sweep-every 60s

## cost: what a firing costs each function, measured on the local stack (DynamoDB
## write and read units, index writes included; SQS and SSM requests; $ per million);
## rewrites BENCHMARKS.md's cost table. Needs moto_server, as `make test` does.
cost:
	COST_UPDATE=1 go test -race -count=1 -run 'TestIntegrationCost|TestCost' -v .

## lint: gofmt, go vet and cfn-lint on the SAM template
lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	go vet ./...
	cfn-lint template.yaml

## build-<Function>: what `sam build` runs for each function of template.yaml
## (BuildMethod: makefile). Pinned so that any build host gives the same
## static linux/arm64 binary: no cgo (the Lambda image has no libc to match),
## no local paths, and no RPC mode (provided.al2023 does not use it).
LAMBDA_GOFLAGS = -trimpath -tags lambda.norpc -ldflags=-s -buildvcs=false
build-ApiFunction build-SweepFunction build-InvokeFunction:
	test -n "$(ARTIFACTS_DIR)"
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(LAMBDA_GOFLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" .

clean:
	rm -rf bootstrap .aws-sam .moto.log
