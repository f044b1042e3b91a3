# Quire — see README.md. `make run` starts one node; `make test` runs every test.
GO        ?= go
BIN       := bin/quire
CORPUS    ?= $(HOME)/.cache/quire-corpus
PKGS      := ./...

.PHONY: all build run test test-short corpus proto lint bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/quire

run: build
	./$(BIN) serve

# The real PDFs the end-to-end tests use are fetched from Debian's archive into
# $(CORPUS) (outside the repository) once; later runs check their hashes only.
corpus:
	../shared/corpus/fetch-corpus.sh $(CORPUS)

test: corpus
	QUIRE_CORPUS=$(CORPUS) $(GO) test -race -timeout 20m $(PKGS)

proto:
	protoc --plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
		--go_out=. --go_opt=module=github.com/quirehq/quire messages/*.proto

lint: proto
	@git diff --quiet -- messages || { git --no-pager diff --stat -- messages; echo "make proto changed the generated code: commit it"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# Benchmarks of bin/quire (see bench/doc.go); more flags with BENCHFLAGS, e.g.
# make bench BENCHFLAGS='-clients 10 -runs 1'. bash for pipefail: a failed run fails make.
bench: SHELL := /bin/bash
bench: build corpus
	mkdir -p bench/results
	set -o pipefail; QUIRE_CORPUS=$(CORPUS) $(GO) test -tags bench -run XXX -bench . -benchtime 1x -timeout 60m ./bench/ \
		-args -quire-bin=$(CURDIR)/$(BIN) $(BENCHFLAGS) | tee bench/results/bench-$$(date +%Y%m%d-%H%M%S).txt

clean:
	rm -rf bin
