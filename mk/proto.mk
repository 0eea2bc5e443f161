# Protobuf code generation for the plugin API (sdk/proto/pluginv1).
# `make proto` installs the pinned generators and regenerates the Go code,
# which is committed.

PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
PROTO_DIR                  := sdk/proto/pluginv1
PROTO_GOBIN                ?= $(shell go env GOPATH)/bin

.PHONY: proto proto-tools

proto-tools:
	@command -v protoc >/dev/null 2>&1 || { \
		echo "protoc not found: installing protobuf-compiler"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y protobuf-compiler; \
		else sudo apt-get update && sudo apt-get install -y protobuf-compiler; fi; }
	@if ! protoc-gen-go --version 2>/dev/null | grep -q '$(PROTOC_GEN_GO_VERSION)'; then \
		GOBIN=$(PROTO_GOBIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION); fi
	@if ! protoc-gen-go-grpc --version 2>/dev/null | grep -q '$(patsubst v%,%,$(PROTOC_GEN_GO_GRPC_VERSION))'; then \
		GOBIN=$(PROTO_GOBIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION); fi

proto: proto-tools
	PATH="$(PROTO_GOBIN):$$PATH" protoc -I $(PROTO_DIR) \
		--go_out=$(PROTO_DIR) --go_opt=paths=source_relative \
		--go-grpc_out=$(PROTO_DIR) --go-grpc_opt=paths=source_relative \
		$(PROTO_DIR)/*.proto

# Cap'n Proto code generation for the SporeConfig schema (proto/sporev1).
# The C++ `capnp` compiler comes from Debian's capnproto package; the Go
# generator is capnpc-go pinned in go.mod as a tool (same version as the
# capnp/v3 runtime). Every .capnp file of one Go package is compiled in one
# call: separate calls would register the schema twice.

CAPNP_DIR := proto/sporev1

.PHONY: proto-capnp proto-capnp-tools

proto-capnp-tools:
	@command -v capnp >/dev/null 2>&1 || { \
		echo "capnp not found: installing capnproto"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends capnproto; \
		else sudo apt-get update && sudo apt-get install -y --no-install-recommends capnproto; fi; }
	go build -o /dev/null capnproto.org/go/capnp/v3/capnpc-go

proto-capnp: proto-capnp-tools
	cd $(CAPNP_DIR) && capnp compile \
		-I"$$(go list -m -f '{{.Dir}}' capnproto.org/go/capnp/v3)/std" \
		-o"$$(go tool -n capnpc-go)" *.capnp

proto: proto-capnp
