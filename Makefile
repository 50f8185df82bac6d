# coord — build, run and test. `make help` lists the targets.
GO        ?= go
BIN       := bin
PKGS      := ./...
FUZZTIME  ?= 10s
DATA_DIR  ?= coord-data

.PHONY: help build run test test-short bench fuzz lint cluster-up cluster-down cluster-clean chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build coordd, coordctl and coordload into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

run: build ## run a single coordd on 127.0.0.1:7181 with data in ./coord-data
	$(BIN)/coordd --data-dir $(DATA_DIR)

test: ## vet, then every test with the race detector (what CI runs)
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 20m $(PKGS)

test-short: ## the fast tests only, no race detector
	$(GO) test -short $(PKGS)

bench: ## micro-benchmarks of the state machine, storage and watch registry
	$(GO) test -run '^$$' -bench . -benchmem ./znode/ ./internal/raftstore/ ./watch/ ./session/

fuzz: ## run every fuzz target briefly ($(FUZZTIME) each)
	@set -e; for spec in $$(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\(.*\)/[^/]*:func |\1:|'); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "fuzz $$pkg $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

cluster-up: ## start a local 3-server cluster on 127.0.0.1:7181-7183 (data in .cluster/)
	scripts/cluster.sh up

cluster-down: ## stop the local cluster (its data stays; cluster-clean deletes it)
	scripts/cluster.sh down

cluster-clean: ## stop the local cluster and delete its data
	scripts/cluster.sh clean

chaos: ## the long fault-injection profile: every fault kind 20 times, >=10 min, prints FIGURE lines (SEED=n SERVERS=3|5)
	$(GO) test -count=1 -timeout 180m -v -run '^TestChaosLong$$' ./internal/chaos -args -chaos.long -chaos.servers=$(or $(SERVERS),3) $(if $(SEED),-chaos.seed=$(SEED))

clean: ## remove build output
	rm -rf $(BIN)
