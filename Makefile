# peer: build, test, benchmark and fuzz. Every target works on a fresh machine
# with Go installed; Go modules come through the module proxy.

GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 20s
BIN       := bin/peer

.PHONY: all build test test-short race lint vet fmt-check tidy-check staticcheck cross fuzz bench sim soak clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/peer

# The test command of the README and of CI: static checks, then every test
# (with the race detector) including each fuzz target's committed corpus,
# then again without the race detector the packages with tests that skip
# under it: those on a virtual clock (testing/synctest), since Go 1.26's race
# detector can crash on a bubble's timers (internal/bubble), and unixfs's
# vectors of a GiB and more, single-goroutine hashing where the detector
# finds nothing and costs minutes.
NORACE_PKGS := ./swarm ./node ./simulate ./unixfs ./names ./gateway
test: lint
	$(GO) test -race -count=1 -timeout 14m $(PKGS)
	$(GO) test -count=1 -timeout 10m $(NORACE_PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

lint: vet fmt-check tidy-check staticcheck cross

vet:
	$(GO) vet $(PKGS)

# go.mod and go.sum say exactly what the code imports.
tidy-check:
	$(GO) mod tidy -diff

# staticcheck is a tool dependency in go.mod: built from the module cache,
# at the version go.mod pins.
staticcheck:
	$(GO) tool staticcheck $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Every package builds for Windows and macOS too, and vets there with its
# tests (those that need Linux live in _linux files). From the module cache
# only, so it needs no network; some 40 s once the build cache has each
# system's packages (the first run compiles the dependencies for each: a
# minute or two; the vet adds some 16 s a system to that).
CROSS ?= windows/amd64 darwin/arm64
cross:
	@set -e; for p in $(CROSS); do \
	  echo "== GOOS=$${p%/*} GOARCH=$${p#*/} go build ./... && go vet ./..."; \
	  GOPROXY=off GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build $(PKGS); \
	  GOPROXY=off GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet $(PKGS); \
	done

# Runs every fuzz target for FUZZTIME each. New crashers land in
# testdata/fuzz/ beside the target: commit them with the fix.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg; \
	  done; \
	done

# Benchmarks: each prints its figure beside the limit it is measured against
# in the same run, and adds a line to the report printed at the end (also
# written to $(BENCH_JSON)). Each benchmark runs once: the figures that matter
# are ratios to a limit measured alongside, not nanoseconds per op. -p 1:
# one package's benchmarks at a time; go test would otherwise run two
# packages' at once (GOMAXPROCS), and a figure and its anchor need not see
# the same neighbour (the chunker's ran beside the gateway's).
# The transfer, chunking, gateway and flooder benchmarks run a figure and its
# anchor back to back in each of PEER_BENCH_ROUNDS rounds and report the median.
# PEER_BENCH_KUBO=/path/to/ipfs also times Kubo's get and cat of the transfer's
# file between two Kubo daemons on loopback (internal/benchrec/kubo.go).
BENCH_JSON ?= bench.json
bench:
	@rm -f bench-records.jsonl
	PEER_BENCH_REPORT=$(CURDIR)/bench-records.jsonl $(GO) test -run '^$$' -bench . -benchtime 1x -p 1 -timeout 30m $(PKGS)
	@echo; $(GO) run ./internal/benchreport bench-records.jsonl $(BENCH_JSON)

# The scale run of the simulation: flash-crowd at 1000 peers, after the same
# at 100, both on a virtual clock, printing virtual and wall time, provider
# lookups found, the seeder's upload and the first chunk's p50 beside their
# goals, then peak RSS and goroutines. PEER_SIM_PEERS sets another size,
# PEER_SIM_CLOCK=wall runs it on the machine's clock. The 90-minute bound is
# wall time for a shared machine: the 1000-peer run needs some 10 minutes
# of CPU, and got a quarter of a core beside six other test runs.
sim:
	PEER_SIM_SCALE=1 $(GO) test -run '^TestFlashCrowdScale$$' -count=1 -v -timeout 90m ./simulate

# The soak: every scenario at 40 peers for SOAK_SEEDS seeds (1…N), each on
# a virtual clock, with two busy loops burning the CPU beside it (started
# here, killed when the soak ends, and each stopped by timeout after
# SOAK_BUSY_MAX seconds whatever happens). It prints a line per run and a
# table: scenario, seeds passed, completion p50 and p99 in virtual time.
SOAK_SEEDS    ?= 20
SOAK_BUSY_MAX ?= 7200
soak:
	@busy=""; \
	for i in 1 2; do timeout $(SOAK_BUSY_MAX) sh -c 'while :; do :; done' & busy="$$busy $$!"; done; \
	trap 'kill $$busy 2>/dev/null' EXIT INT TERM; \
	echo "soak: two busy loops running (pids$$busy)"; \
	PEER_SOAK=1 PEER_SOAK_SEEDS=$(SOAK_SEEDS) $(GO) test -run '^TestSoak$$' -count=1 -v -timeout 3h ./simulate; \
	status=$$?; kill $$busy 2>/dev/null; exit $$status

clean:
	rm -rf bin
