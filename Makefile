# The real steps of the project. `make test` runs every test; `make demo` runs the main job end to
# end on the embedded default store.
SHELL        := /bin/bash
VERSION      ?= 0.1.0
GO           ?= go
BIN          := $(CURDIR)/bin
PLUGIN       := $(BIN)/pulumi-resource-pulumiservice
SERVER       := $(BIN)/pulumi-webhooks
# -X targets: checked by `make check-ldflags` (the linker ignores a wrong path silently).
PLUGIN_LDFLAGS := -X github.com/pulumi-webhooks/pulumi-webhooks/provider/resource.Version=$(VERSION)
SERVER_LDFLAGS := -X github.com/pulumi-webhooks/pulumi-webhooks/provider/cli.Version=$(VERSION)

.PHONY: all build schema sdks check-generated reference check-reference install test test-race \
        test-unit test-provider test-integration bench demo toolchain deps vet clean

all: build

build: $(PLUGIN) $(SERVER)

$(PLUGIN): FORCE
	$(GO) build -trimpath -ldflags "$(PLUGIN_LDFLAGS)" -o $@ ./provider/cmd/pulumi-resource-pulumiservice

$(SERVER): FORCE
	$(GO) build -trimpath -ldflags "$(SERVER_LDFLAGS)" -o $@ ./provider/cmd/pulumi-webhooks

FORCE:

# schema.json is generated from the provider itself, in process (no pulumi CLI needed).
schema:
	$(GO) run ./provider/cmd/pulumi-resource-pulumiservice -schema > schema.json.tmp && mv schema.json.tmp schema.json

# SDKs for TypeScript, Python, Go and C#, generated from schema.json with the Pulumi code generators.
sdks: schema
	$(GO) run ./provider/cmd/pulumi-webhooks-sdkgen --schema schema.json --out sdk --version $(VERSION)

# Fails when regenerating schema.json or the SDKs changes anything that is checked in.
check-generated: sdks
	@git diff --exit-code -- schema.json sdk || { echo "generated files are stale: run 'make sdks' and commit the result"; exit 1; }
	@test -z "$$(git status --porcelain -- schema.json sdk)" || { git status --porcelain -- schema.json sdk; echo "generated files are missing from git: run 'make sdks' and commit the result"; exit 1; }

# The facts the compatibility tests compare with (provider/internal/refdocs/testdata: the official
# schema, the REST API, the documented payloads; names and shapes, no prose) are generated from
# Pulumi's reference documents, which are not part of this repository. Give their directory:
#   make reference REFERENCE=DIR        regenerates the facts
#   make check-reference REFERENCE=DIR  fails when the checked-in facts disagree with the documents
reference:
	$(GO) run ./provider/internal/refdocs/refdocsgen -from "$(REFERENCE)" -write

check-reference:
	$(GO) run ./provider/internal/refdocs/refdocsgen -from "$(REFERENCE)"

# Installs the plugin into the Pulumi plugin cache so programs find it without a path, with the
# pinned pulumi CLI that provider/scripts/toolchain.sh builds (and prints the directory of).
install: $(PLUGIN) toolchain
	PATH="$$(bash provider/scripts/toolchain.sh):$$PATH" pulumi plugin install resource pulumiservice $(VERSION) --file $(PLUGIN) --reinstall

toolchain:
	@bash provider/scripts/toolchain.sh >/dev/null

deps: toolchain
	@bash tests/deps.sh

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l provider tests); test -z "$$unformatted" || { echo "gofmt needed: $$unformatted"; exit 1; }

test: vet check-generated build deps test-race fuzz
	$(GO) test -count=1 -timeout 40m ./...

# The race detector on the packages that run goroutines: the engine's delivery workers, the
# store's connections, the server and the CLI's serve. The other packages run without it.
RACE_PKGS := ./provider/engine/... ./provider/store/... ./provider/server/... ./provider/cli/...

test-race:
	$(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

# Go fuzz targets, each for a bounded time: the REST request decoding, the event ingestion
# body, the event rules (webhook.Event) and the resource's Check (`go test -fuzz` takes one
# target at a time). A failure leaves its input under the package's testdata/fuzz, which then
# runs with every `go test`.
FUZZTIME ?= 10s
.PHONY: fuzz
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzHookRequest$$' -fuzztime $(FUZZTIME) ./provider/server
	$(GO) test -run '^$$' -fuzz '^FuzzEmitRequest$$' -fuzztime $(FUZZTIME) ./provider/server
	$(GO) test -run '^$$' -fuzz '^FuzzCheckKeys$$' -fuzztime $(FUZZTIME) ./provider/server
	$(GO) test -run '^$$' -fuzz '^FuzzParseObject$$' -fuzztime $(FUZZTIME) ./provider/engine/render
	$(GO) test -run '^$$' -fuzz '^FuzzMembers$$' -fuzztime $(FUZZTIME) ./provider/internal/jsonobj
	$(GO) test -run '^$$' -fuzz '^FuzzEventValidate$$' -fuzztime $(FUZZTIME) ./provider/webhook
	$(GO) test -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime $(FUZZTIME) ./provider/resource

# The main job end to end on the embedded default store: server, receiver, `pulumi up` on
# examples/yaml, a few events, what the receiver got; then it cleans up after itself.
demo: build toolchain
	bash tests/demo/demo.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./provider/...

clean:
	rm -rf $(BIN)
