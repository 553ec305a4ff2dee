# The order-status pipeline. `make help` lists the targets.
SHELL := /bin/bash
MODULES := schemas plumbing ingress normalizer dispatcher replay e2e deploy
GO ?= go
# Flags for every module's tests. -race and -shuffle as the style guide asks; -count=1 so a
# cached pass never stands in for a run against the live broker; -timeout is a hang guard per
# package (the end-to-end package runs beside the other modules and takes ~10 min of it).
TEST_FLAGS ?= -race -shuffle=on -count=1 -timeout 25m
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help run test test-prepare test-modules bench chaos lint fmt tidy build clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

run: ## start the whole pipeline here (embedded Kafka and Redis unless KAFKA_BROKERS / REDIS_ADDR are set)
	@mkdir -p bin && $(GO) build -o bin/ ./ingress ./normalizer ./dispatcher ./dispatcher/cmd/ddsandbox ./ingress/cmd/elemepull ./ingress/cmd/elemesandbox ./e2e/cmd/devstack
	@bin/devstack -bin bin

test: ## start a real Kafka and Redis, then run every module's tests against them
	@TESTENV_ALONGSIDE='$(MAKE) --no-print-directory test-prepare' deploy/local/testenv.sh $(MAKE) --no-print-directory test-modules

# test-prepare downloads every module's dependencies and compiles every package and test package
# (as the tests will: -race; `go list -export` compiles without linking), the service binaries
# the end-to-end TestMain builds, and gotestsum (into .run/bin, for deploy/local/test-modules.sh),
# while testenv.sh starts Kafka and Redis; on a fresh machine that startup waits about a minute
# for Maven Central. One go command for all modules, so the build uses every core throughout.
# Built here, gotestsum is not compiled by both of test-modules.sh's lanes at once when the
# tests start.
GOTESTSUM := gotest.tools/gotestsum@v1.13.0
test-prepare:
	@$(GO) list -race -test -deps -export -f '{{""}}' $(addprefix ./,$(addsuffix /...,$(MODULES))) >/dev/null || echo "test-prepare: something did not compile; the tests will say what" >&2
	@$(GO) list -deps -export -f '{{""}}' ./ingress ./normalizer ./dispatcher ./dispatcher/cmd/ddsandbox ./ingress/cmd/elemepull ./ingress/cmd/elemesandbox >/dev/null || true
	@GOBIN=$(CURDIR)/.run/bin $(GO) install $(GOTESTSUM) || true

# deploy/local/test-modules.sh: the end-to-end module runs in the background beside the others
# (it waits on processes and faults more than it computes); every module runs even when an
# earlier one failed; the last line adds up every module's results.
BACKGROUND_MODULES := e2e
test-modules:
	@GOTESTSUM=$(GOTESTSUM) deploy/local/test-modules.sh "$(BACKGROUND_MODULES)" "$(filter-out $(BACKGROUND_MODULES),$(MODULES))" $(GO) $(TEST_FLAGS)

bench: ## run the module benchmarks and the system benchmark (e2e/bench/system.sh) against a real Kafka and Redis; writes docs/performance.md
	@deploy/local/testenv.sh bash -c 'set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run=^$$ -bench=. -benchmem ./...); done; e2e/bench/system.sh'

chaos: ## the long fault-injection runs (TestChaos, then TestTopology on a 3-broker cluster + Sentinel): CHAOS_DURATION of load per scenario (default 60s), CHAOS_RATE callbacks/s (default 100), CHAOS_176_WINDOW (default 5m); writes the tables to docs/reliability.md
	@TEST_KAFKA_PORT=$${TEST_KAFKA_PORT:-29392} TEST_REDIS_PORT=$${TEST_REDIS_PORT:-26579} deploy/local/testenv.sh bash -c 'cd e2e && CHAOS_DURATION=$${CHAOS_DURATION:-60s} CHAOS_RATE=$${CHAOS_RATE:-100} CHAOS_176_WINDOW=$${CHAOS_176_WINDOW:-5m} CHAOS_DOC=$$ORDERPIPE_ROOT/docs/reliability.md E2E_QUIET_LOGS=1 $(GO) test -count=1 -timeout 180m -run "^(TestChaos|TestTopology)$$" -v . 2>&1 | tee $${TMPDIR:-/tmp}/orderpipe-chaos.log | grep --line-buffered -E "^(=== RUN|--- |ok|FAIL|PASS)|(chaos|topology)_test.go:[0-9]+: [a-z0-9-]+: sent|\| "; exit $${PIPESTATUS[0]}'

lint: ## gofmt, go vet and staticcheck over every module
	@test -z "$$(gofmt -l $(MODULES))" || { gofmt -l $(MODULES); exit 1; }
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...); done

fmt: ## gofmt every module
	@gofmt -w $(MODULES)

tidy: ## go mod tidy every module, then sync the workspace
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) mod tidy); done; $(GO) work sync

build: ## build every module with and without the workspace
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) build ./... && GOWORK=off $(GO) build ./...); done

clean: ## remove built binaries and local run state (keeps the Kafka download cache)
	@rm -rf bin .run
