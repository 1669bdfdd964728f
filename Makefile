# The gateway's build, run, test and benchmark entry points. Go is taken from PATH or /usr/local/go.
export PATH := $(PATH):/usr/local/go/bin
GO            ?= go
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN           := bin
EXAMPLES      := examples/functions/hello examples/functions/stream examples/functions/worker
PLUGINS       := queue stream s3
TEST_TIMEOUT  ?= 18m

.PHONY: all build examples run test test-unit test-integration lint bench clean proto

all: build

## build: bin/gateway (cgo on: libcontainer's nsenter is C), the built-in trigger plugins
## (bin/gateway-trigger-*, with their checksum lines in bin/plugins.hcl) and the example functions
build: examples
	CGO_ENABLED=1 $(GO) build -o $(BIN)/gateway ./cmd/gateway
	@for p in $(PLUGINS); do \
		CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/gateway-trigger-$$p ./plugins/$$p || exit 1; \
	done
	@for p in $(PLUGINS); do \
		printf 'plugin "%s" {\n  path     = "%s"\n  %s\n}\n' $$p "$(CURDIR)/$(BIN)/gateway-trigger-$$p" \
			"$$($(BIN)/gateway plugin checksum $(BIN)/gateway-trigger-$$p)"; \
	done > $(BIN)/plugins.hcl

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
test:
	CGO_ENABLED=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd examples/plugins/redis-streams && $(GO) test -count=1 -timeout 5m ./...

test-unit:
	CGO_ENABLED=1 $(GO) test -count=1 -short ./...

test-integration:
	CGO_ENABLED=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./integration/...

## lint: gofmt, go vet, staticcheck
lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	CGO_ENABLED=1 $(GO) vet ./...
	cd examples/plugins/redis-streams && $(GO) vet ./...
	CGO_ENABLED=1 $(GO) run $(STATICCHECK) ./...

## proto: regenerate the plugin protocol's Go code (needs protoc, protoc-gen-go and protoc-gen-go-grpc;
## the generated files are committed, so building never needs them)
proto:
	cd plugins/sdk/proto && protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

## bench: benchmarks against a same-run baseline, written to docs/BENCHMARKS.md
bench: build
	CGO_ENABLED=1 $(GO) run ./integration/cmd/bench -out docs/BENCHMARKS.md

clean:
	rm -rf $(BIN) $(foreach d,$(EXAMPLES),$(d)/build)
