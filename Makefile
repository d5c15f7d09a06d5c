# Build, test and deploy the Acronis MFA enforcer.
# `sam build` calls the build-<LogicalId> targets (BuildMethod: makefile in template.yaml)
# with ARTIFACTS_DIR set; everything else is for people and CI.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

FUNCTIONS := webhook worker sweep

GO        ?= go
TOOLS_BIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK   := $(TOOLS_BIN)/staticcheck
AWS_LAMBDA_RIE := $(TOOLS_BIN)/aws-lambda-rie
STATICCHECK_PKG := honnef.co/go/tools/cmd/staticcheck@v0.8.2
RIE_PKG         := github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d

FUZZTIME   ?= 60s
# The build tag of the suites that need tools beyond Go: moto_server, cfn-lint
# and aws-lambda-rie. make test sets it; a plain `go test ./...` leaves them out.
TEST_TAGS  := integration
SAM_CONFIG_ENV ?= default

# linux/arm64, static, stripped, without the RPC shim: what provided.al2023 on arm64 runs.
LAMBDA_BUILD := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"

.PHONY: build cli $(addprefix build-,$(FUNCTIONS)) \
	build-WebhookFunction build-WorkerFunction build-SweepFunction \
	require-artifacts-dir tools check-tools test lint demo bench fuzz deploy clean

## build: every function to bin/NAME/bootstrap (linux/arm64)
build: $(addprefix build-,$(FUNCTIONS))

## cli: the operator's command line, bin/acronis-mfa, for this machine
cli:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/acronis-mfa ./cmd/acronis-mfa

$(addprefix build-,$(FUNCTIONS)): build-%:
	$(LAMBDA_BUILD) -o bin/$*/bootstrap ./functions/$*

## build-<LogicalId>: called by `sam build`, writes $(ARTIFACTS_DIR)/bootstrap
build-WebhookFunction: require-artifacts-dir
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/webhook

build-WorkerFunction: require-artifacts-dir
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/worker

build-SweepFunction: require-artifacts-dir
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sweep

require-artifacts-dir:
	@test -n "$(ARTIFACTS_DIR)" || { echo "error: ARTIFACTS_DIR is not set; sam build sets it (use 'make build' for bin/)" >&2; exit 1; }

## check-tools: the tools that come with the machine image and cannot be installed here
check-tools:
	@for tool in cfn-lint moto_server; do \
		if ! command -v $$tool >/dev/null 2>&1; then \
			echo "error: '$$tool' is not on PATH. It comes with the machine image (Python package; PyPI is not reachable), so it cannot be installed by this Makefile." >&2; \
			exit 1; \
		fi; \
	done

## tools: pinned Go tools into $(TOOLS_BIN), installed only when missing
tools: $(STATICCHECK) $(AWS_LAMBDA_RIE)

$(STATICCHECK):
	GOBIN=$(TOOLS_BIN) $(GO) install $(STATICCHECK_PKG)

$(AWS_LAMBDA_RIE):
	GOBIN=$(TOOLS_BIN) $(GO) install $(RIE_PKG)

## test: lint, cfn-lint and every Go test with the race detector, the suites
## that need moto_server, cfn-lint or the emulator included (build tag
## $(TEST_TAGS)); `go test ./...` alone runs those that need Go only
test: check-tools
	$(GO) mod download
	$(MAKE) --no-print-directory tools
	$(MAKE) --no-print-directory lint
	cfn-lint template.yaml
	AWS_LAMBDA_RIE=$(AWS_LAMBDA_RIE) $(GO) test -race -count=1 -tags $(TEST_TAGS) ./...

## lint: gofmt, go vet, staticcheck
lint: $(STATICCHECK)
	@unformatted="$$(find . \( -path ./.git -o -path ./.aws-sam -o -path ./bin \) -prune -o -name '*.go' -print | xargs -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet -tags $(TEST_TAGS) ./...
	$(STATICCHECK) -tags $(TEST_TAGS) ./...

## demo: the whole job on this machine, no AWS account, no Docker
demo: $(AWS_LAMBDA_RIE)
	@command -v moto_server >/dev/null 2>&1 || { echo "error: 'moto_server' is not on PATH. It comes with the machine image (Python package moto[server]; PyPI is not reachable), so it cannot be installed by this Makefile." >&2; exit 1; }
	AWS_LAMBDA_RIE=$(AWS_LAMBDA_RIE) CGO_ENABLED=0 $(GO) run ./cmd/demo

## bench: sweeps, watch runs, a rollout and reports of up to 100,000 tenants on a
## simulator with 20 ms latency, and the webhook's replay records, against
## moto_server (about 10 minutes); figures in BENCHMARKS.md
bench: check-tools
	$(GO) test -tags $(TEST_TAGS) -run='^$$' -bench='^Benchmark(Sweep|Watch|Rollout|Report)$$' -benchtime=1x -timeout=60m ./internal/sweep/
	$(GO) test -tags $(TEST_TAGS) -run='^$$' -bench='^BenchmarkReplayRecords$$' -benchtime=300x -timeout=10m ./internal/webhook/

## fuzz: every Fuzz target in the module, FUZZTIME each (default 60s)
fuzz:
	@for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		for target in $$($(GO) test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "== fuzz $$pkg $$target for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
		done; \
	done

## deploy: build with SAM and deploy with samconfig.toml's $(SAM_CONFIG_ENV) environment
deploy:
	sam build --config-env $(SAM_CONFIG_ENV)
	sam deploy --config-env $(SAM_CONFIG_ENV)

clean:
	rm -rf bin .aws-sam
