# tizi: the two commands a newcomer needs are `make up` and `make test` (see README.md).
# Every prerequisite is installed and started idempotently; caches live in ~/.cache/tizi.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PY := .venv/bin/python
STACK ?= local
export TIZI_CACHE ?= $(HOME)/.cache/tizi
# Every recipe line gets the offline toolchain on PATH (pulumi, providers, helm).
TOOLS := eval "$$(scripts/toolchain.sh env)";

.PHONY: venv hostpkgs toolchain engines image llm promtool cluster up down test test-unit lint

venv: .venv/.installed
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[test]'
	touch $@

hostpkgs:
	scripts/host-packages.sh

toolchain:
	scripts/toolchain.sh ensure

engines:
	scripts/engines.sh start

## The payload's image and the gateway's (Envoy + tizi's supervisor), in front of every payload.
image: engines
	scripts/build-image.sh
	scripts/build-gateway-image.sh

## The LLM payload: the llama.cpp server image and the SmolLM2 model image (weights apart).
llm: engines
	scripts/build-llm-image.sh
	scripts/build-model-image.sh

## Prometheus's promtool, to evaluate the gateway's alert rules (tests/unit/gateway).
promtool:
	scripts/build-promtool.sh >/dev/null

cluster: image llm toolchain
	scripts/cluster.sh start
	scripts/cluster.sh import-image tizi/inference-service:0.1.0
	scripts/cluster.sh import-image tizi/gateway:0.1.0
	scripts/cluster.sh import-image tizi/llm-server:0.1.0
	scripts/cluster.sh import-image tizi/model-smollm2:0.1.0
	scripts/cluster/serverless-build.sh knative traefik metrics-server
	scripts/cluster/knative-serving.sh install
	scripts/cluster/metrics-server.sh install

## The main command: deploy the default local stack (edge target on this machine's Docker).
## Only the toolchain parts the stack's targets need are built (`tizi needs`): the
## edge-only local stack never waits for the Kubernetes provider and helm.
up: venv image $(if $(filter llm-%,$(STACK)),llm)
	scripts/toolchain.sh ensure $$(.venv/bin/tizi needs --stack $(STACK))
	$(TOOLS) .venv/bin/tizi up --stack $(STACK)

down: venv
	scripts/toolchain.sh ensure $$(.venv/bin/tizi needs --stack $(STACK))
	$(TOOLS) .venv/bin/tizi destroy --stack $(STACK)

lint: venv
	.venv/bin/ruff check .
	.venv/bin/mypy

test-unit: venv
	.venv/bin/pytest -m unit -q

## The test command: every tier (unit, edge, engine, cluster) plus lint.
test: venv hostpkgs toolchain image llm promtool cluster lint
	$(TOOLS) eval "$$(scripts/cluster.sh env)"; .venv/bin/pytest -q
