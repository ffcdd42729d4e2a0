# Ember. Set-up on a fresh machine is two commands: `make run` and `make test`.
GO       ?= go
BIN      := bin/ember
DATADIR  ?= ./data/dev
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
KOILIB   := node/testdata/koilib

# Packages with concurrency on the hot path: run under the race detector.
RACE_PKGS := ./engine/... ./rpcgw/... ./node/... ./store/... ./producer/...

.PHONY: all build run test test-go test-race js-deps lint fuzz proto tools clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ember

## run: build, create a dev chain in $(DATADIR) if there is none, run the node.
run: build
	@test -f $(DATADIR)/config.toml || ./$(BIN) init --dev --datadir $(DATADIR)
	./$(BIN) node --datadir $(DATADIR)

## test: vet, every test (koilib against a live node included), the race detector.
test: js-deps lint test-go test-race

test-go:
	$(GO) test -count=1 ./...

test-race:
	$(GO) test -race -count=1 $(RACE_PKGS)

# koilib (npm) for the wallet compatibility test. In CI a missing npm is an error.
js-deps:
	@if command -v npm >/dev/null 2>&1; then \
		if [ ! -f $(KOILIB)/node_modules/.package-lock.json ] || [ $(KOILIB)/package-lock.json -nt $(KOILIB)/node_modules/.package-lock.json ]; then \
			npm ci --prefix $(KOILIB) --no-audit --no-fund; \
		fi; \
	elif [ "$$CI" = "true" ]; then echo "npm is required in CI (koilib compatibility test)"; exit 1; \
	else echo "npm not found: the koilib test will be skipped"; fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: a short run of every fuzz target (FUZZTIME each): every decoder and the RPC parser.
FUZZTIME ?= 15s
FUZZ_TARGETS := ./rpcgw:FuzzServe ./proto/kjson:FuzzUnmarshal ./engine/genesis:FuzzParse \
	./engine/state:FuzzDecodeAccount ./engine/koinos:FuzzParsers ./engine/sigverify:FuzzVerifyTx \
	./store:FuzzDecodeBlockRecord
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## proto: regenerate the Go code from proto/ (needs protoc; plugins are installed into bin/tools).
tools:
	GOBIN=$(CURDIR)/bin/tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	GOBIN=$(CURDIR)/bin/tools $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@v0.6.0

proto: tools
	@command -v protoc >/dev/null || { echo "protoc is missing: apt-get install protobuf-compiler"; exit 1; }
	TOOLS=$(CURDIR)/bin/tools bash proto/gen.sh

clean:
	rm -rf bin
