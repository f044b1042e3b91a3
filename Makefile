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

lint:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

bench: build corpus
	mkdir -p bench/results
	QUIRE_CORPUS=$(CORPUS) $(GO) test -tags bench -run XXX -bench . -benchtime 1x -timeout 60m ./bench/ | tee bench/results/bench-$$(date +%Y%m%d-%H%M%S).txt

clean:
	rm -rf bin
