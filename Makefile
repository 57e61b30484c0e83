# linkerd-swift task runner. `make help` lists the targets; CI runs `make test` through .ci/run.
SWIFT ?= swift
SWIFT_FORMAT ?= swift-format

.PHONY: help build deps test fmt lint generate bench bench-webhook demo clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## Build every target (debug)
	$(SWIFT) build

deps: ## Install what the tests need (kubernetes-validate for ManifestTests); quick when already present
	@python3 -c 'import kubernetes_validate' 2>/dev/null || { \
		python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-pip; }; \
		python3 -m pip install --quiet kubernetes-validate==1.37.0 2>/dev/null \
			|| python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0; }

test: deps ## Build and run every test (one build plan for both steps)
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

fmt: ## Format all Swift sources in place
	$(SWIFT_FORMAT) format --in-place --recursive --parallel Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks Benchmarks/Sources

lint: ## Fail if any Swift source is not formatted
	$(SWIFT_FORMAT) lint --strict --recursive --parallel Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks Benchmarks/Sources

generate: ## Regenerate generated code (none yet: the protobuf contract arrives with the identity issue)
	@echo "nothing to generate yet"

bench: ## Run the benchmarks (release build, separate package in Benchmarks/)
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark

bench-webhook: ## Load-test the proxy injector webhook with hey over HTTPS keep-alive (webhook pinned to one core)
	Benchmarks/webhook-load.sh

demo: ## Run the main job: linkerd-controller against a loopback API server, meshing, auditing and restarting pods
	$(SWIFT) run linkerd-dev-cluster

clean: ## Remove build products
	rm -rf .build Benchmarks/.build
