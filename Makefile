# Ember. Set-up on a fresh machine is two commands: `make run` and `make test`.
GO       ?= go
BIN      := bin/ember
DATADIR  ?= ./data/dev
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
KOILIB   := node/testdata/koilib
SDKAS    := internal/sdkas/testdata

# Packages with concurrency on the hot path: run under the race detector.
RACE_PKGS := ./engine/... ./rpcgw/... ./node/... ./store/... ./producer/... ./netio/... ./events/... ./internal/...

.PHONY: all build run devnet test test-go test-race test-tools test-diskfull js-deps lint fuzz proto tools clean install bench bench-net bench-sync soak crashtest e2e token-wasm

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ember

## bench: the standard load test, about three minutes on 2 cores: per scheme, the signature
## ceiling, a closed-loop run on a fresh node (committed TPS), a run at half that rate (p99 latency),
## and wallet-shaped runs, one transaction per request from 32 and 256 connections (--no-wallet: without).
## Results in bench-results/<time>/. BENCH_FLAGS passes more flags (ember bench suite -h).
BENCH_FLAGS ?=
bench: build
	./$(BIN) bench suite $(BENCH_FLAGS)

## token-wasm: the KCS-1 token of internal/sdkas (AssemblyScript, Koinos's SDK) as bin/token.wasm, for
## `ember bench rpc|engine --workload wasm-token --contract bin/token.wasm` (needs Node.js: make js-deps).
TOKEN_WASM := bin/token.wasm
token-wasm: js-deps
	$(GO) run ./internal/sdkas/cmd/build-contract -o $(TOKEN_WASM) token

## bench-net: four producers on loopback against one node, per scheme (ember bench net -h):
## committed TPS against single/4, latency at half rate, block propagation, irreversibility.
## About four minutes on 2 cores. Results in bench-results/net-<time>/<scheme>/.
bench-net: build
	@out=bench-results/net-$$(date -u +%Y%m%d-%H%M%S); \
	for s in ed25519 secp256k1; do \
		./$(BIN) bench net --nodes 4 --scheme $$s --out $$out/$$s $(BENCH_FLAGS) || exit 1; \
	done

## bench-sync: a fresh node syncs 10,000 blocks of 500 Ed25519 transfers from another over p2p,
## against one node's committed TPS (ember bench sync -h). Results in bench-results/<time>/.
bench-sync: build
	./$(BIN) bench sync --scheme ed25519 $(BENCH_FLAGS)

## soak: SOAK_DURATION (default 1h) at SOAK_RATE tx/s (default: half the committed TPS of a
## closed-loop probe run first) of Ed25519 transfers, signed while sent; the node's RSS and Go heap
## every 10 s into soak.csv and soak.png. Fails unless RSS is flat over the second half, the node
## kept up and nothing failed (docs/reliability.md, Soak). SOAK_FLAGS passes more (ember bench soak -h).
SOAK_DURATION ?= 1h
SOAK_RATE     ?=
SOAK_FLAGS    ?=
soak: build
	./$(BIN) bench soak --scheme ed25519 --duration $(SOAK_DURATION) $(if $(SOAK_RATE),--rate $(SOAK_RATE)) \
		--out bench-results/soak-$$(date -u +%Y%m%d-%H%M%S) $(SOAK_FLAGS)

## run: build, create a dev chain in $(DATADIR) if there is none, run the node.
run: build
	@test -f $(DATADIR)/config.toml || ./$(BIN) init --dev --datadir $(DATADIR)
	./$(BIN) node --datadir $(DATADIR)

## devnet: build, then run a local network of 4 producer nodes in ./data/devnet (created on
## the first run, restarted after) until Ctrl-C. Ports: JSON-RPC 8080-8083, p2p 8888-8891, admin 9090-9093.
devnet: build
	./$(BIN) devnet --nodes 4 --datadir ./data/devnet

## test: vet, every test (koilib against a live node included), the race detector.
test: js-deps test-tools lint test-go test-race

test-go:
	$(GO) test -count=1 ./...

test-race:
	$(GO) test -race -count=1 $(RACE_PKGS)

## test-diskfull: the full-disk test on a real filesystem (about 40 s): a running node's 200 MB
## tmpfs is filled and freed, then the node is restarted on it full and freed. It mounts, so it
## needs root (or CAP_SYS_ADMIN) and fails without; `make test` runs the same faults injected.
test-diskfull:
	$(GO) test -count=1 -tags diskfull_e2e -run TestDiskFullTmpfs -v ./cmd/ember

# koilib (npm) for the wallet compatibility test, and Koinos's AssemblyScript SDK and compiler
# for the contracts internal/sdkas builds (engine/vm's and node's tests). In CI a missing npm is an error.
js-deps:
	@if command -v npm >/dev/null 2>&1; then \
		for d in $(KOILIB) $(SDKAS); do \
			if [ ! -f $$d/node_modules/.package-lock.json ] || [ $$d/package-lock.json -nt $$d/node_modules/.package-lock.json ]; then \
				npm ci --prefix $$d --no-audit --no-fund; \
			fi; \
		done; \
	elif [ "$$CI" = "true" ]; then echo "npm is required in CI (koilib compatibility test, SDK contracts)"; exit 1; \
	else echo "npm not found: the koilib and SDK contract tests will be skipped"; fi

# grpcurl for the gRPC reflection test, built once per version into the user cache directory,
# where node/grpcurl_test.go looks for it (and builds it itself if missing; same version there).
GRPCURL_VERSION := v1.9.4
test-tools:
	@d=$${XDG_CACHE_HOME:-$$HOME/.cache}/ember-test-tools/grpcurl-$(GRPCURL_VERSION); \
	test -x $$d/grpcurl || GOBIN=$$d $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## crashtest: kill a dev node under transfer load with SIGKILL CRASH_KILLS times at random moments,
## restart it each time and check nothing reported irreversible is lost, the sign guard holds, the
## event log and indexes resume with no gap, and a replay from genesis gives the live state root
## (docs/reliability.md). About 3 minutes for 50 kills. CRASH_FLAGS passes more flags (ember crashtest -h).
CRASH_KILLS ?= 50
CRASH_FLAGS ?=
crashtest: build
	./$(BIN) crashtest --kills $(CRASH_KILLS) $(CRASH_FLAGS)

## e2e: the perturbed-network scenarios of internal/e2e/scenarios, one after another, each on a
## new 4-producer devnet of processes under transfer load (kill -9 and restart, SIGSTOP and SIGCONT,
## one node cut off, a 2-2 partition, a producer's clock 7 s ahead, and the 10-minute mixed one), judged over JSON-RPC
## (docs/reliability.md). About 12 minutes. E2E_FLAGS passes more flags (ember e2e -h).
E2E_FLAGS ?=
e2e: build
	./$(BIN) e2e --all internal/e2e/scenarios $(E2E_FLAGS)

## fuzz: a short run of every fuzz target (FUZZTIME each): every decoder and the RPC parser.
FUZZTIME ?= 15s
FUZZ_TARGETS := ./rpcgw:FuzzServe ./proto/kjson:FuzzUnmarshal ./engine/genesis:FuzzParse \
	./engine/state:FuzzDecodeAccount ./engine/koinos:FuzzParsers ./engine/sigverify:FuzzVerifyTx \
	./store:FuzzDecodeBlockRecord ./store:FuzzDecodeLogRecord ./netio/p2p:FuzzFrames ./netio/p2p:FuzzMessages \
	./netio/amqp:FuzzRPCDelivery \
	./store:FuzzDecodeStoreValues ./node/config:FuzzDecodeFile ./node/config:FuzzSetKey \
	./engine/keys:FuzzParse ./node/pendingfile:FuzzReadPending \
	./engine/vm:FuzzInstrument ./engine/vm:FuzzSystemCall ./rpcgw/grpcgw:FuzzDecode
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded" when
# -fuzztime ends while a worker is busy (golang/go#75804, fixed in Go 1.27); it writes no
# failing input. Such a run counts only once the target's corpus replays cleanly.
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		if $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg >$$log 2>&1; then \
			cat $$log; \
		else \
			cat $$log; \
			if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "fuzz $$name: Go's -fuzztime race (golang/go#75804), no failing input; replaying its corpus"; \
				$(GO) test -count=1 -run "^$$name$$" $$pkg; \
			else exit 1; fi; \
		fi; \
	done

## proto: regenerate the Go code from proto/ (needs protoc; plugins are installed into bin/tools).
tools:
	GOBIN=$(CURDIR)/bin/tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	GOBIN=$(CURDIR)/bin/tools $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@v0.6.0
	GOBIN=$(CURDIR)/bin/tools $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

proto: tools
	@command -v protoc >/dev/null || { echo "protoc is missing: apt-get install protobuf-compiler"; exit 1; }
	TOOLS=$(CURDIR)/bin/tools bash proto/gen.sh

## install: the binary, the systemd unit, the sysusers entry, a default
## /etc/ember/ember.toml (kept if present), the state directory and the docs.
## Honours PREFIX and DESTDIR; with neither DESTDIR nor root, run it with sudo.
UNITDIR    ?= /etc/systemd/system
SYSCONFDIR ?= /etc
STATEDIR   ?= /var/lib/ember
install: build
	install -Dm755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ember
	install -d -m755 $(DESTDIR)$(UNITDIR)
	sed 's#/usr/local/bin/ember#$(PREFIX)/bin/ember#; s#/usr/local/share/doc#$(PREFIX)/share/doc#' systemd/ember.service > $(DESTDIR)$(UNITDIR)/ember.service
	chmod 644 $(DESTDIR)$(UNITDIR)/ember.service
	install -Dm644 systemd/ember.sysusers $(DESTDIR)$(SYSCONFDIR)/sysusers.d/ember.conf
	install -d -m755 $(DESTDIR)$(SYSCONFDIR)/ember
	test -f $(DESTDIR)$(SYSCONFDIR)/ember/ember.toml || install -m644 systemd/ember.toml $(DESTDIR)$(SYSCONFDIR)/ember/ember.toml
	install -d -m750 $(DESTDIR)$(STATEDIR)
	install -Dm644 systemd/99-ember.sysctl.conf $(DESTDIR)$(PREFIX)/share/doc/ember/99-ember.sysctl.conf
	install -Dm644 docs/operations.md $(DESTDIR)$(PREFIX)/share/doc/ember/operations.md
	install -Dm644 docs/config.md $(DESTDIR)$(PREFIX)/share/doc/ember/config.md
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		systemd-sysusers $(SYSCONFDIR)/sysusers.d/ember.conf 2>/dev/null || id ember >/dev/null 2>&1 || useradd --system --home-dir $(STATEDIR) --shell /usr/sbin/nologin ember; \
		chown ember:ember $(STATEDIR); \
		systemctl daemon-reload 2>/dev/null || true; \
		echo "installed; next: docs/operations.md (genesis, producer key, systemctl enable --now ember)"; \
	fi

clean:
	rm -rf bin
