# linkerd-swift task runner. `make help` lists the targets; CI runs `make test` through .ci/run.
SWIFT ?= swift
SWIFT_FORMAT ?= swift-format
# Suites run after the others, each on its own, so that no two compete for the 2 cores: the ones bounded in real
# time (KubeRuntimeTests' leader election, LinkerdControllerTests' webhook deadlines and reconcile loops) and the
# heavy ones (LinkerdIdentityServerTests: clients calling in a loop during issuer rotation, Python and openssl
# subprocesses; LinkerdNetworkTests: network namespaces, ip, iptables and nsenter by the hundred; LinkerdProxyTests:
# megabytes through proxies and TLS handshakes).
ISOLATED_SUITES = KubeRuntimeTests LinkerdControllerTests LinkerdIdentityServerTests LinkerdNetworkTests LinkerdProxyTests
empty :=
space := $(empty) $(empty)
# Every source directory but LinkerdProxyAPI, which holds only generated code (`make generate`).
FORMATTED_SOURCES = $(filter-out Sources/LinkerdProxyAPI,$(wildcard Sources/*))

.PHONY: help build deps test fmt lint generate bench bench-proxy bench-webhook bench-certify demo clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## Build every target (debug)
	$(SWIFT) build

deps: ## Install what the tests need (iptables, iproute2 and nsenter for the network-namespace tests; tcpdump, curl and nghttp2-client for the mesh in namespaces; kubernetes-validate for ManifestTests; grpcio for the identity cross-check); quick when already present
	@if [ "$$(id -u)" = 0 ] && ! { command -v iptables-nft && command -v iptables-legacy && command -v ip \
			&& command -v nsenter && command -v setpriv && command -v tcpdump && command -v curl \
			&& command -v nghttp && command -v h2load; } >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables iproute2 util-linux \
			tcpdump curl nghttp2-client; fi
	@python3 -c 'import kubernetes_validate' 2>/dev/null || { \
		python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-pip; }; \
		python3 -m pip install --quiet kubernetes-validate==1.37.0 2>/dev/null \
			|| python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0; }
	@python3 -c 'import grpc, grpc_tools' 2>/dev/null || { \
		python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-pip; }; \
		python3 -m pip install --quiet grpcio==1.85.1 grpcio-tools==1.85.1 2>/dev/null \
			|| python3 -m pip install --quiet --break-system-packages grpcio==1.85.1 grpcio-tools==1.85.1; }

test: deps ## Build and run every test (one build plan for both steps)
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(subst $(space),|,$(ISOLATED_SUITES))'
	$(foreach suite,$(ISOLATED_SUITES),$(SWIFT) test --skip-build --filter '$(suite)' &&) true

fmt: ## Format all Swift sources in place
	$(SWIFT_FORMAT) format --in-place --recursive --parallel Package.swift $(FORMATTED_SOURCES) Tests Benchmarks/Package.swift Benchmarks/Benchmarks Benchmarks/Sources

lint: ## Fail if any Swift source is not formatted
	$(SWIFT_FORMAT) lint --strict --recursive --parallel Package.swift $(FORMATTED_SOURCES) Tests Benchmarks/Package.swift Benchmarks/Benchmarks Benchmarks/Sources

generate: ## Regenerate the proxy API's Swift code from Sources/LinkerdProxyAPI/Proto (protoc + plugins; not run by CI)
	scripts/generate-proxy-api.sh

bench: ## Run the benchmarks (release build, separate package in Benchmarks/): the ordo-one benchmarks, then bench-proxy
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark
	Benchmarks/proxy-bench.sh

bench-proxy: ## Proxy pair (mTLS) vs direct vs HAProxy on loopback, HTTP/1.1 and HTTP/2: p50/p99 at 1,000 req/s, one-core throughput, RSS
	Benchmarks/proxy-bench.sh

bench-webhook: ## Load-test the proxy injector webhook with hey over HTTPS keep-alive (webhook pinned to one core)
	Benchmarks/webhook-load.sh

bench-certify: ## Load-test Certify: calls per second and latency, linkerd-identity on one event-loop thread
	cd Benchmarks && $(SWIFT) build -c release --product CertifyLoad && .build/release/CertifyLoad

demo: ## Run the main job: linkerd-controller against a loopback API server, meshing, auditing and restarting pods
	$(SWIFT) run linkerd-dev-cluster

clean: ## Remove build products
	rm -rf .build Benchmarks/.build
