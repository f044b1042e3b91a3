# Quire — see README.md. `make run` starts one node; `make test` runs every test.
GO        ?= go
BIN       := bin/quire
CORPUS    ?= $(HOME)/.cache/quire-corpus
PKGS      := ./...

.PHONY: all build run test test-short fuzz-short corpus proto lint bench bench-go clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/quire

run: build
	./$(BIN) serve

# The real PDFs the end-to-end tests use are fetched from Debian's archive into
# $(CORPUS) (outside the repository) once; later runs check their hashes only.
corpus:
	bench/corpus/fetch-corpus.sh $(CORPUS)

test: corpus
	QUIRE_CORPUS=$(CORPUS) $(GO) test -race -timeout 30m $(PKGS)
	$(MAKE) fuzz-short

# Every parser of outside input has a fuzz target; `make test` runs each
# briefly on top of its committed seed corpus (testdata/fuzz/), for a number
# of inputs rather than a time (a time limit that falls during a slow input
# is reported as a failure by go test); FUZZSCALE multiplies the counts.
FUZZSCALE ?= 1
define FUZZ_TARGETS
FuzzMultipartUpload 20    ./httpapi
FuzzSchemaCompile   5000  ./actors/extract/gemini
FuzzInspect         100   ./actors/pdf
FuzzNormalize       20000 ./actors/extract/text
FuzzParseGossipKeys 20000 ./cluster
FuzzDecodeMeta      20000 ./cluster
endef
export FUZZ_TARGETS

fuzz-short: SHELL := /bin/bash
fuzz-short:
	@while read -r name count pkg; do \
		[ -n "$$name" ] || continue; \
		n=$$(( count * $(FUZZSCALE) )); \
		echo "== fuzz $$name ($$n inputs)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $${n}x $$pkg || exit 1; \
	done <<< "$$FUZZ_TARGETS"

proto:
	protoc --plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
		--go_out=. --go_opt=module=github.com/quirehq/quire messages/*.proto

lint: proto
	@git diff --quiet -- messages || { git --no-pager diff --stat -- messages; echo "make proto changed the generated code: commit it"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# `make bench`: a short standard set of `quire bench` scenarios (about five
# minutes), each against a local cluster that quire bench starts and stops;
# every run's table, JSON and HTML report go to bench/results/<time>/. More
# flags for every run with BENCHARGS, e.g. make bench BENCHARGS='--slots 16'.
# A run that fails (or whose credits do not add up) fails make at the end.
define BENCH_SET
small           small --duration 20s --clients 8
mixed           mixed --duration 30s --clients 16 --slots 16
large           large --jobs 6 --clients 3 --pages 300 --fake-latency-base 2s --fake-latency-per-page 0 --fake-latency-jitter 0
text-corpus     mixed --extractor text --pdfs $(CORPUS) --jobs 24 --clients 4
create          create --jobs 400 --clients 32
cancel          cancel --jobs 16 --clients 4
network-failure network-failure --duration 15s --clients 8
rate-limit      rate-limit --duration 15s --clients 8
worker-crash    worker-crash --duration 15s --clients 8
scale           scale --duration 10s --clients 4 --scale-nodes 1,2,4
fairness        fairness --jobs 8 --clients 1 --fake-latency-base 2s --fake-latency-per-page 0 --fake-latency-jitter 0
endef
export BENCH_SET

bench: SHELL := /bin/bash
bench: build corpus
	@dir=bench/results/$$(date +%Y%m%d-%H%M%S); mkdir -p $$dir; failed=""; \
	while read -r name args; do \
		[ -n "$$name" ] || continue; \
		echo "== $$name: quire bench $$args $(BENCHARGS)"; \
		./$(BIN) bench $$args $(BENCHARGS) --json $$dir/$$name.json --html $$dir/$$name.html > $$dir/$$name.txt || failed="$$failed $$name"; \
		cat $$dir/$$name.txt; echo; \
	done <<< "$$BENCH_SET"; \
	echo "reports in $$dir"; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

# `make bench-go`: the go-test benchmarks of bin/quire (see bench/doc.go); more
# flags with BENCHFLAGS, e.g. make bench-go BENCHFLAGS='-clients 10 -runs 1'.
# bash for pipefail: a failed run fails make.
bench-go: SHELL := /bin/bash
bench-go: build corpus
	mkdir -p bench/results
	set -o pipefail; QUIRE_CORPUS=$(CORPUS) $(GO) test -tags bench -run XXX -bench . -benchtime 1x -timeout 60m ./bench/ \
		-args -quire-bin=$(CURDIR)/$(BIN) $(BENCHFLAGS) | tee bench/results/bench-$$(date +%Y%m%d-%H%M%S).txt

clean:
	rm -rf bin
