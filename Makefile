# callclock: the one-command entry points. See README.md.

TESTFLAGS ?=

.PHONY: build run test lint precision clean

## build: compile the bootstrap binary for this machine
build:
	go build -o bootstrap .

## run: the whole service locally (moto_server + bootstrap local on 127.0.0.1:8080)
run:
	./scripts/run-local.sh

## test: unit and integration tests (integration tests start their own moto_server)
test:
	go test -race -count=1 $(TESTFLAGS) ./...

## precision: end-to-end firing precision on the local stack (p50/p99/max lateness)
precision:
	python3 scripts/precision.py

## lint: gofmt, go vet and cfn-lint on the SAM template
lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	go vet ./...
	cfn-lint template.yaml

## build-ApiFunction etc. are not needed: template.yaml uses SAM's go1.x build method.

clean:
	rm -rf bootstrap .aws-sam .moto.log
