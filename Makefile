# The gateway's build, run, test and benchmark entry points. Go is taken from PATH or /usr/local/go;
# .tools/bin (the Go tools make deps installs, such as versitygw) comes first.
export PATH := $(CURDIR)/.tools/bin:$(PATH):/usr/local/go/bin
GO            ?= go
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN           := bin
EXAMPLES      := examples/functions/hello examples/functions/stream examples/functions/worker
PLUGINS       := queue stream s3
TEST_TIMEOUT  ?= 18m
# seccomp: runc's libcontainer installs syscall filters only when built with this tag (and
# libseccomp); the agent refuses sandbox { seccomp = "default" } without it. Exported so the
# binaries the tests build for themselves get it too.
export GOFLAGS := $(strip $(GOFLAGS) -tags=seccomp)
# fuzz targets run briefly by make test (package:Target), each for FUZZ_EXECS inputs.
FUZZ_TARGETS  := ./internal/unpack:FuzzZip ./internal/unpack:FuzzTar ./internal/unpack:FuzzLayer ./internal/image:FuzzParseRef ./config:FuzzLoadConfig \
	./gateway/sigv4:FuzzVerify ./sandbox:FuzzRuntimeAPI ./sandbox:FuzzSubscription ./internal/asyncq:FuzzDecode ./gateway:FuzzForwardedStream \
	./gateway:FuzzForwardResponse ./internal/lambda/eventstream:FuzzWriter ./internal/lambda:FuzzDestinationARN ./internal/structs:FuzzParseEgressRule ./internal/signing:FuzzSignedZip \
	./internal/invoke:FuzzTraceHeaders \
	./internal/funclog:FuzzParseParams ./internal/funclog:FuzzParseRecord \
	./gateway/httpapi/console:FuzzParseCookie \
	./internal/metrics:FuzzDecodeNodeHistory ./gateway/httpapi:FuzzParseMinutes
FUZZ_EXECS    ?= 3000x

.PHONY: all deps build examples run test test-unit test-integration fuzz lint bench clean proto docs

all: build

## deps: what building and testing need beyond Go, installed when missing (idempotent, quick when
## present): gcc and libseccomp's headers for cgo, and the servers the tests run against (apt
## packages, and versitygw into .tools/bin).
deps:
	@GO="$(GO)" scripts/deps.sh

## build: bin/gateway (cgo on: libcontainer's nsenter is C), the built-in trigger plugins
## (bin/gateway-trigger-*, with their checksum lines in bin/plugins.hcl), the example agent file
## with those plugin blocks (bin/agent.hcl: the agent reads one file, and checksums change with
## every build) and the example functions
build: deps examples
	CGO_ENABLED=1 $(GO) build -o $(BIN)/gateway ./cmd/gateway
	@for p in $(PLUGINS); do \
		CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/gateway-trigger-$$p ./plugins/$$p || exit 1; \
	done
	@for p in $(PLUGINS); do \
		printf 'plugin "%s" {\n  path     = "%s"\n  %s\n}\n' $$p "$(CURDIR)/$(BIN)/gateway-trigger-$$p" \
			"$$($(BIN)/gateway plugin checksum $(BIN)/gateway-trigger-$$p)"; \
	done > $(BIN)/plugins.hcl
	@{ cat examples/agent/agent.hcl; echo; echo '# Written by make build: bin/plugins.hcl.'; cat $(BIN)/plugins.hcl; } > $(BIN)/agent.hcl

## examples: the example functions, as static binaries named bootstrap (runtime provided)
examples:
	@for d in $(EXAMPLES); do \
		echo "building $$d"; \
		CGO_ENABLED=0 $(GO) build -trimpath -o $$d/build/bootstrap ./$$d || exit 1; \
	done

## run: a throwaway single-node agent (-dev) with the example functions applied
run: build
	@scripts/run.sh

## test: every package's tests, the integration tests (real agent, real sandboxes) included
test: deps
	CGO_ENABLED=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd examples/plugins/redis-streams && $(GO) test -count=1 -timeout 5m ./...
	@$(MAKE) --no-print-directory fuzz

## fuzz: each fuzz target for a short, bounded run from its committed seed corpus
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZ_EXECS))"; \
		out=$$(CGO_ENABLED=1 $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZ_EXECS) $$pkg 2>&1) || \
			{ echo "$$out"; exit 1; }; \
	done

test-unit: deps
	CGO_ENABLED=1 $(GO) test -count=1 -short ./...

test-integration: deps
	CGO_ENABLED=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./integration/...

## lint: gofmt, go vet, staticcheck
lint: deps
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	CGO_ENABLED=1 $(GO) vet ./...
	cd examples/plugins/redis-streams && $(GO) vet ./...
	CGO_ENABLED=1 $(GO) run $(STATICCHECK) ./...

## proto: regenerate the plugin protocol's Go code (needs protoc, protoc-gen-go and protoc-gen-go-grpc;
## the generated files are committed, so building never needs them)
proto:
	cd plugins/sdk/proto && protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

## docs: regenerate docs/cli.md from the commands' help (cmd/gateway's TestCLIDocs fails when it is stale)
docs:
	CGO_ENABLED=1 $(GO) run ./cmd/gateway docs > docs/cli.md

## bench: benchmarks against a same-run baseline, written to docs/BENCHMARKS.md
## (BENCHFLAGS=-peers adds the peer rows, wrk and the AWS Lambda RIE, and the density rows)
BENCHFLAGS ?=
bench: build
	CGO_ENABLED=1 $(GO) run ./integration/cmd/bench -out docs/BENCHMARKS.md $(BENCHFLAGS)

clean:
	rm -rf $(BIN) $(foreach d,$(EXAMPLES),$(d)/build)
