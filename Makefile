# lobbyd: `make run` starts a working server on embedded defaults,
# `make test` runs every test. See README.md.

GO      ?= go
PKGS    ?= ./...
BENCH   ?= .

.PHONY: run test race unit lint bench fuzz fuzz-build fuzz-short build fakeplayfab echoref loadtest baseline storm chaos clean

## run: start lobbyd on 127.0.0.1:8080 (this machine only: dev auth hands anyone a token) with embedded Redis,
## in-process fake PlayFab and dev auth; RUN_ADDR=:8080 to listen on every interface
RUN_ADDR ?= 127.0.0.1:8080
run:
	LOBBYD_DEV_AUTH=true $(GO) run ./cmd/lobbyd -addr $(RUN_ADDR)

## test: formatting and vet, every test with the race detector and the fuzz builds side by side (each part's
## output is printed when it ends), then each fuzz target for 10s; see docs/testing.md
test:
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint race fuzz-build
	@$(MAKE) --no-print-directory fuzz-short

## race: every test with the race detector (part of make test)
race:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

## unit: the tests without the race detector, quicker while editing
unit:
	$(GO) test -count=1 $(PKGS)

## lint: gofmt check and go vet
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: Go benchmarks (results are recorded in docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(PKGS)

# FUZZ_TARGETS lists package:target; Go fuzzes one target per go test run.
FUZZ_TARGETS = ./lobby:FuzzFrame ./lobby:FuzzVerify ./matchmaker:FuzzParseConfig \
	./partyalloc/fakeplayfab:FuzzRequestPartyService
FUZZTIME     ?= 60s
FUZZPARALLEL ?= 2

## fuzz: run each fuzz target for FUZZTIME (default 60s) with FUZZPARALLEL workers; a failing input is saved under the package's testdata/fuzz/
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz: $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL) $$pkg; \
	done

# FUZZ_PKGS are the packages of FUZZ_TARGETS, each once.
FUZZ_PKGS = $(sort $(foreach t,$(FUZZ_TARGETS),$(firstword $(subst :, ,$(t)))))

## fuzz-build: build the instrumented test binaries of the fuzz targets into the cache, one package at a
## time, so that fuzz-short's concurrent runs share compiled packages
fuzz-build:
	@set -e; for pkg in $(FUZZ_PKGS); do $(GO) test -c -o /dev/null -fuzz . $$pkg; done

## fuzz-short: every fuzz target for 10s, all at once with one worker each (run by make test)
fuzz-short: fuzz-build
	@dir=$$(mktemp -d); status=0; \
	for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime 10s -parallel 1 $$pkg >$$dir/$$name.log 2>&1 & \
		echo $$! >$$dir/$$name.pid; \
	done; \
	for t in $(FUZZ_TARGETS); do \
		name=$${t##*:}; \
		if wait $$(cat $$dir/$$name.pid); then r=ok; else r=FAILED; status=1; fi; \
		echo "fuzz-short: $$name (10s, 1 worker): $$r"; cat $$dir/$$name.log; \
	done; \
	rm -rf $$dir; exit $$status

## build: binaries into bin/
build:
	$(GO) build -o bin/ ./cmd/...

## fakeplayfab: run the fake PlayFab on :8090
fakeplayfab:
	$(GO) run ./cmd/fakeplayfab -addr :8090

## echoref: run the reference WebSocket server on 127.0.0.1:8090 (the yardstick of docs/benchmarks.md)
echoref:
	$(GO) run ./cmd/echoref -addr 127.0.0.1:8090

## loadtest: start lobbyd on a free port and run lobbyload against it (LOADTEST_ARGS: lobbyload flags)
loadtest:
	GO=$(GO) ./cmd/lobbyload/loadtest.sh $(LOADTEST_ARGS)

## baseline: the load-test baseline of docs/benchmarks.md into BASELINE_OUT (BASELINE_ARGS: e.g. -r redis://127.0.0.1:6379/15, a scratch database)
BASELINE_OUT ?= baseline-results
baseline:
	./cmd/lobbyload/baseline.sh $(BASELINE_ARGS) $(BASELINE_OUT)

## storm: the reconnect storm of docs/benchmarks.md: 3 lobbyd nodes on STORM_REDIS (FLUSHDB'd: a scratch database)
## hold 45,000 players (or as many as two nodes can hold) queueing, in lobbies and matched; node 3 is killed with
## kill -9, its players reconnect to the other two; reports into STORM_OUT (STORM_ARGS: storm.sh options, e.g. -n 3000 -R 300)
STORM_REDIS ?= redis://127.0.0.1:6379/15
STORM_OUT   ?= storm-results
STORM_ARGS  ?=
storm:
	./cmd/lobbyload/storm.sh -r $(STORM_REDIS) $(STORM_ARGS) $(STORM_OUT)

## chaos: the fault test (cmd/lobbychaos): 3 lobbyd nodes, a real redis-server with AOF, the fake PlayFab with faults;
## kills nodes and restarts Redis while players play, then checks the invariants (CHAOS_ARGS: lobbychaos flags, e.g. -duration 30m).
## `make test` runs a short version (TestChaosShort).
CHAOS_ARGS ?=
chaos:
	$(GO) build -o bin/ ./cmd/lobbyd ./cmd/fakeplayfab ./cmd/lobbychaos
	bin/lobbychaos -lobbyd bin/lobbyd -fakeplayfab bin/fakeplayfab -duration 10m -players 120 -v $(CHAOS_ARGS)

clean:
	rm -rf bin
