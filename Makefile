# Strait: kube-proxy replacement and BGP service load balancer.
#
#   make demo    two agents in a namespace lab, real traffic (root)
#   make test    every test, privileged ones included (root)
#   make generate  regenerate the eBPF objects and bindings (needs clang)

GO        ?= go
BIN       := bin
GOFLAGS   ?=
TESTFLAGS ?= -timeout 40m
# Generated files that CI checks are up to date.
GENERATED := dataplane/kern bench/kern

.PHONY: all deps build generate check-generate vet test test-unit demo clean k8s-binaries bench bench-full

all: build

deps:
	@bash hack/deps.sh

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

generate: deps
	$(GO) generate ./dataplane/kern/... ./bench/kern/...

# Regenerate and fail if the committed objects differ.
check-generate: generate
	@git diff --exit-code --stat -- $(GENERATED) || \
		(echo "generated eBPF objects are stale: run 'make generate' and commit" >&2; exit 1)

vet:
	$(GO) vet ./...

k8s-binaries:
	@bash hack/k8s-binaries.sh

# Every test. Privileged tests need root; with CI set they fail instead of
# skipping when they cannot run.
test: deps check-generate vet k8s-binaries
	$(GO) test $(GOFLAGS) $(TESTFLAGS) ./...

# Unprivileged, fast tests only.
test-unit:
	$(GO) test $(GOFLAGS) -short ./...

demo: deps
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/strait-agent ./cmd/strait-demo
	$(BIN)/strait-demo --agent $(BIN)/strait-agent --manifests examples/standalone

# Benchmarks (root): micro, control plane and side by side with kube-proxy.
# Results go to bench/results/<timestamp>/ (results.json, results.md, SVG
# charts); the directory is printed at the end. bench: quick profile
# (under 10 minutes); bench-full: every size (10,000 Services included).
bench: deps k8s-binaries
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/strait-bench
	$(BIN)/strait-bench run --profile quick --out bench/results

bench-full: deps k8s-binaries
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/strait-bench
	$(BIN)/strait-bench run --profile full --out bench/results

clean:
	rm -rf $(BIN)
