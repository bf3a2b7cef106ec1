# The front door. `make demo` and `make test` work on a fresh machine with only the Rust
# toolchain: they install what they need (Debian's ffmpeg, two project venvs) on first use.
# `make help` lists every target, with the text after `## ` on its line below.
#
# The local stack (ministack and the local services, infra/local/stack.sh) takes its ports,
# region and folders from infra/local/stack.env. The user's stack (make stack, demo, soak, bench)
# runs on STACK_PORT with its state in STACK_STATE_DIR; `make test` runs the end-to-end tests on
# a stack of its own (TEST_STACK_PORT, TEST_STACK_STATE_DIR, wiped first) and leaves the user's
# alone. LOCAL_STACK_PORT=... and LOCAL_STATE_DIR=... move the user's stack.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

include infra/local/stack.env

STACK_NAME ?= video-suite
AWS_STACK_NAME ?= video-suite
VENV := .venv
VENV_MS := .venv-ministack
VENV_CK := .venv-checkov
PY ?= python3
RUN := infra/local/stack.sh run
LOCAL_STACK_PORT ?= $(STACK_PORT)
LOCAL_STATE_DIR ?= $(STACK_STATE_DIR)
export LOCAL_STACK_PORT LOCAL_STATE_DIR
export SAM_CLI_BETA_RUST_CARGO_LAMBDA := 1
# The template writes each rendition worker once with Fn::ForEach (AWS::LanguageExtensions);
# SAM CLI expands it for build, package and deploy only when asked.
export SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS := 1
export SAM_CLI_TELEMETRY := 0
# What `make test` gives the sub-makes that deploy, test and stop its own stack.
TEST_STACK_VARS := LOCAL_STACK_PORT=$(TEST_STACK_PORT) LOCAL_STATE_DIR=$(TEST_STACK_STATE_DIR)
FUNCTIONS := $(patsubst functions/%/Cargo.toml,%,$(wildcard functions/*/Cargo.toml))
# The processor the functions and the ffmpeg layer are built for. The local stack runs them on
# this machine (x86_64); AWS deployments default to Graviton (ARCH=arm64, the template's default).
LOCAL_ARCH := x86_64
ARCH ?= arm64
LAYER_DIR := $(LOCAL_DIR)/layer

# A port of the stack's map (stack, camera_api, mediaconvert, origin, gif_sources), as stack.sh
# computes it from stack.env for this LOCAL_STACK_PORT.
stack_port = $(shell LOCAL_STACK_PORT=$(LOCAL_STACK_PORT) infra/local/stack.sh port $(1))
# Parameters for the local deployment only (same template): tools on the host PATH, short
# timeouts so that redelivery after a crash is quick to observe. MediaConvert's job events come
# from the local MediaConvert under its own source (EventBridge refuses aws.* sources from
# PutEvents), and public URLs point at the local CloudFront stand-in. GIF sources: the local S3
# and the local services' gif_sources are on loopback, so exactly those two sockets are
# allow-listed (on AWS the list stays empty), and a small size cap keeps the oversize tests quick.
CAMERA_API_URL = http://127.0.0.1:$(call stack_port,camera_api)
# The MediaConvert job template the local stack's submitter runs: built in (hd-sd, what the
# end-to-end tests check), or a console export of job-templates/mediaconvert/console/ (the demo's).
MEDIACONVERT_TEMPLATE ?= hd-sd
DEMO_MEDIACONVERT_TEMPLATE ?= vod-hls-ladder
LOCAL_PARAMETERS = Architecture=$(LOCAL_ARCH) FfmpegPath=ffmpeg FfprobePath=ffprobe WorkerTimeoutSeconds=120 WorkerVisibilityTimeoutSeconds=130 WorkerReservedConcurrency=4 \
  MediaConvertEventSource=devstack.mediaconvert MediaConvertTemplate=$(MEDIACONVERT_TEMPLATE) PublicBaseUrl=http://127.0.0.1:$(call stack_port,origin) \
  CameraApiUrl=$(CAMERA_API_URL) RecordingsUrl=$(CAMERA_API_URL)/recordings \
  ClipRequeueDelaySeconds=3 ClipPendingLimitSeconds=60 \
  GifSourceLoopbackAllowList=127.0.0.1:$(LOCAL_STACK_PORT),127.0.0.1:$(call stack_port,gif_sources) GifMaxSourceBytes=20000000 \
  GifConverterTimeoutSeconds=120 GifVisibilityTimeoutSeconds=130 \
  SegmentedAboveSeconds=$(LOCAL_SEGMENTED_ABOVE_SECONDS) SegmentSeconds=$(LOCAL_SEGMENT_SECONDS) SegmentMaxConcurrency=2 SegmentTimeoutSeconds=120
# Segmented renditions on the local stack: sources over a minute go to the state machine (the test
# samples of the other flows are shorter), cut into 120 s segments, two encoded at a time (2 cores).
# Each segment task costs about 1.7 s beside its encode here (an invocation, a seek, an upload):
# the 30-minute source of tests/segmented.rs took 15 minutes of `make test` in 20 s segments.
LOCAL_SEGMENTED_ABOVE_SECONDS ?= 60
LOCAL_SEGMENT_SECONDS ?= 120
E2E_THREADS ?= 3
# The local services, the demo and every test, in one dev build of the whole workspace with its
# tests: cargo resolves dependency features per selection of packages, so the targets below share
# it and `cargo test --workspace` finds it done, also with `--test NAME` to pick one test. A build
# of `-p local-services` and a `cargo run -p demo` each resolved other features and compiled the
# AWS SDK again.
BUILD_WORKSPACE := cargo build --quiet --workspace --all-targets
# Where that build puts its binaries (the demo's, the bench's).
DEV_BIN := $${CARGO_TARGET_DIR:-target}/debug

.PHONY: help tools venvs layer stack-up build build-aws rehearse-deploy stack stack-down demo run-demo unit lint test e2e dead-letters run-e2e soak run-soak \
  bench run-bench deploy deploy-fn redrive clean-local

help: ## this list
	@echo "make TARGET [VARIABLE=value ...]   (settings: infra/local/stack.env)"
	@awk '/^[a-zA-Z0-9][a-zA-Z0-9_-]*:([^=]|$$)/ { \
	  target = $$0; sub(/:.*/, "", target); \
	  text = $$0; if (sub(/.*## /, "", text) == 0) text = "?? no description: add a ## line after the target"; \
	  printf "  make %-12s %s\n", target, text }' $(firstword $(MAKEFILE_LIST))

# ------------------------------------------------------------------ tools
tools: $(LOCAL_DIR)/.ffmpeg $(LOCAL_DIR)/.chromium $(LOCAL_DIR)/.qemu ## install what the other targets need (ffmpeg, chromium, the .venv* Python tools), once
	@$(MAKE) --no-print-directory -j3 venvs

# The three venvs side by side: their installs mostly wait on the registry (about 3 minutes one
# after another on a fresh machine).
venvs: $(VENV)/.installed $(VENV_MS)/.installed $(VENV_CK)/.installed ## the project's Python tools (.venv, .venv-ministack, .venv-checkov), installed side by side, once
	@:

$(VENV)/.installed: infra/local/requirements-tools.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(VENV_MS)/.installed: infra/local/requirements-ministack.txt
	$(PY) -m venv $(VENV_MS)
	$(VENV_MS)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(VENV_CK)/.installed: infra/local/requirements-checkov.txt
	$(PY) -m venv $(VENV_CK)
	$(VENV_CK)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(LOCAL_DIR)/.ffmpeg:
	@mkdir -p $(LOCAL_DIR)
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
	  echo "installing ffmpeg (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg >/dev/null; \
	fi
	@ffmpeg -hide_banner -encoders 2>/dev/null | grep libx264 >/dev/null || { echo "ffmpeg lacks libx264"; exit 1; }
	touch $@

# Headless Chromium checks the origin server's page (tests/mediaconvert.rs).
$(LOCAL_DIR)/.chromium:
	@mkdir -p $(LOCAL_DIR)
	@if ! command -v chromium >/dev/null; then \
	  echo "installing chromium (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	touch $@

# The arm64 layer and bootstraps are run on this x86_64 machine under qemu's user-mode
# emulation (infra/tests/test_layer.py, infra/deploy/check_bootstraps.py).
$(LOCAL_DIR)/.qemu:
	@mkdir -p $(LOCAL_DIR)
	@if ! command -v qemu-aarch64-static >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then \
	  echo "installing qemu-user-static and the arm64 glibc the bootstraps load (Debian packages)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq qemu-user-static libc6-arm64-cross >/dev/null; \
	fi
	touch $@

# ------------------------------------------------------------------ builds
layer: $(VENV)/.installed ## the ffmpeg + ffprobe Lambda layer for x86_64 and arm64, from pinned packages (zips in LOCAL_DIR/layer)
	$(VENV)/bin/python infra/layer/build_layer.py --out $(LAYER_DIR) --zip

# infra/build/Makefile does the work for sam build: one workspace build of every function for
# LAMBDA_ARCHITECTURE, and the layer. `build` is the local stack's (this machine's processor).
build: tools ## sam build for the local stack: every function in one cargo build, and the layer (LOCAL_ARCH)
	LAMBDA_ARCHITECTURE=$(LOCAL_ARCH) PYTHON=$(CURDIR)/$(VENV)/bin/python $(RUN) sam build \
	  --template-file infra/template.yaml --build-dir $(SAM_BUILD_DIR) --parameter-overrides Architecture=$(LOCAL_ARCH)

build-aws: tools ## sam build for AWS (ARCH=arm64|x86_64), into SAM_BUILD_DIR-ARCH, with its artifacts checked
	LAMBDA_ARCHITECTURE=$(ARCH) PYTHON=$(CURDIR)/$(VENV)/bin/python PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sam build \
	  --template-file infra/template.yaml --build-dir $(SAM_BUILD_DIR)-$(ARCH) --parameter-overrides Architecture=$(ARCH)
	$(VENV)/bin/python infra/deploy/check_artifacts.py --build-dir $(SAM_BUILD_DIR)-$(ARCH) --arch $(ARCH)

# ------------------------------------------------------------------ local stack
stack-up: tools ## build the local services (the workspace's dev build) and start ministack (no deploy)
	$(BUILD_WORKSPACE)
	infra/local/stack.sh up

# Deploys the same template a real account gets, with `sam deploy`, records the outputs, then
# (re)starts the local services, which learn bucket and topic names from those outputs.
stack: stack-up build ## start the local stack, deploy infra/template.yaml into it, start the local services (leaves it up)
	$(RUN) sam deploy --template-file $(SAM_BUILD_DIR)/template.yaml --stack-name $(STACK_NAME) \
	  --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM --no-confirm-changeset \
	  --no-fail-on-empty-changeset --parameter-overrides $(LOCAL_PARAMETERS) >$(LOCAL_STATE_DIR)/sam-deploy.log 2>&1 \
	  || { tail -n 40 $(LOCAL_STATE_DIR)/sam-deploy.log; exit 1; }
	$(RUN) sam list stack-outputs --stack-name $(STACK_NAME) --output json >$(LOCAL_STATE_DIR)/stack-outputs.json
	infra/local/stack.sh services
	$(RUN) $(VENV)/bin/python infra/ops/register_job_templates.py job-templates/mediaconvert/console/*.json
	$(RUN) $(VENV)/bin/python infra/local/apply_emulator_gaps.py --stack-name $(STACK_NAME) \
	  --template infra/template.yaml --parameter-overrides $(LOCAL_PARAMETERS)
	@echo "local stack '$(STACK_NAME)' deployed on port $(LOCAL_STACK_PORT); outputs in $(LOCAL_STATE_DIR)/stack-outputs.json"

stack-down: ## stop the local stack; returns once its processes are gone and its ports free
	infra/local/stack.sh down

# `$(call with_stack,TARGETS[,VARIABLES])`: deploys the stack (make stack), makes TARGETS against
# it, then stops that stack, also when a step fails or is interrupted. VARIABLES go to every
# sub-make (the test stack's port and state). Every step is a make target, so `make -n` only prints.
define with_stack
+@trap '$(MAKE) --no-print-directory stack-down $(2)' EXIT; $(MAKE) --no-print-directory stack $(1) $(2)
endef

# ------------------------------------------------------------------ demo
# The stack stops when the demo ends; run it from a terminal to keep the page up until Enter.
demo: tools ## the whole pipeline on the local stack with a sample video (stack stopped after)
	$(call with_stack,run-demo,MEDIACONVERT_TEMPLATE=$(DEMO_MEDIACONVERT_TEMPLATE))

run-demo: ## the demo alone, against the stack already up (make stack)
	$(BUILD_WORKSPACE)
	$(RUN) $(DEV_BIN)/demo

# ------------------------------------------------------------------ tests
unit: ## cargo test of the whole workspace (no stack)
	cargo test --workspace --quiet

lint: tools ## cargo fmt --check, clippy -D warnings, cfn-lint and checkov on the template
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	$(VENV)/bin/cfn-lint infra/template.yaml
	@# Reached only when cfn-lint exited 0, which it does only with no error, warning or
	@# informational finding; the ignores are the template's own cfn-lint metadata entries.
	@echo "cfn-lint infra/template.yaml: 0 errors, 0 warnings, $$(grep -c 'cfn-lint:' infra/template.yaml || true) ignores"
	$(VENV)/bin/python infra/ops/checkov_scan.py --checkov $(VENV_CK)/bin/checkov infra/template.yaml

# The local services are built first so that infra/tests/test_stack.py restarts them too. The
# conformance run prints its table (--nocapture), picked out of the workspace's build with
# `--test` (see BUILD_WORKSPACE).
test: lint layer ## lint, the layer, Python and unit tests, then the end-to-end tests on a stack of their own (make e2e)
	$(BUILD_WORKSPACE)
	$(VENV)/bin/pytest -q infra/tests
	cargo test --workspace -- --skip local_mediaconvert_conformance
	cargo test --workspace --test conformance -- --nocapture
	$(MAKE) --no-print-directory e2e

# Tests own their state: a fresh stack on TEST_STACK_PORT with its state in TEST_STACK_STATE_DIR
# (a test stack left by an interrupted run is stopped first), stopped at the end. The user's
# stack, its port and its state are not touched; the sam build cache (SAM_BUILD_DIR) is shared.
e2e: tools ## the end-to-end tests on a fresh stack of their own (TEST_STACK_PORT), leaving the user's alone
	$(if $(filter $(abspath $(TEST_STACK_STATE_DIR)),$(abspath $(STACK_STATE_DIR) $(LOCAL_STATE_DIR) $(LOCAL_DIR))),\
	  $(error TEST_STACK_STATE_DIR must be a folder of its own, not $(TEST_STACK_STATE_DIR)))
	@$(MAKE) --no-print-directory stack-down $(TEST_STACK_VARS)
	rm -rf $(TEST_STACK_STATE_DIR)
	$(call with_stack,dead-letters rehearse-deploy run-e2e,$(TEST_STACK_VARS))

# Before the end-to-end tests on their own stack: what a long-lived stack holds (a dead letter in
# every DLQ), so that a test judging more than what it created fails here, not on a user's machine.
dead-letters: ## leave a dead letter "of an earlier run" in every DLQ of the stack (make e2e does, first)
	$(RUN) $(VENV)/bin/python infra/local/leave_dead_letters.py --stack-name $(STACK_NAME)

# What `make deploy` would do, up to the account: lint, the real build for both architectures,
# sam package into the local S3, checks on every zip, and every bootstrap started until it asks
# the Runtime API for work (arm64 under qemu), with the environment the local stack gave it.
rehearse-deploy: ## the deploy rehearsal against the stack already up: validate, build both architectures, package, check
	$(RUN) sam validate --lint --template-file infra/template.yaml --region $(STACK_REGION)
	$(MAKE) --no-print-directory build-aws ARCH=arm64
	@for arch in arm64 $(LOCAL_ARCH); do \
	  dir=$(SAM_BUILD_DIR)$$( [ $$arch = $(LOCAL_ARCH) ] || echo -$$arch ); \
	  $(RUN) sam package --template-file $$dir/template.yaml --output-template-file $(LOCAL_STATE_DIR)/packaged-$$arch.yaml \
	    --resolve-s3 --s3-prefix rehearsal-$$arch >$(LOCAL_STATE_DIR)/sam-package-$$arch.log 2>&1 \
	    || { tail -n 20 $(LOCAL_STATE_DIR)/sam-package-$$arch.log; exit 1; }; \
	  $(RUN) $(VENV)/bin/python infra/deploy/check_artifacts.py --build-dir $$dir --arch $$arch \
	    --packaged-template $(LOCAL_STATE_DIR)/packaged-$$arch.yaml; \
	  $(RUN) $(VENV)/bin/python infra/deploy/check_bootstraps.py --build-dir $$dir --arch $$arch --stack-name $(STACK_NAME); \
	done

# The end-to-end tests are the workspace's only ignored tests. Built as `--workspace`, like the unit
# tests before them: the same packages and dev-dependencies resolve the same features, so their
# compiled dependencies are reused (`-p e2e` alone resolved others and rebuilt the AWS SDK). One
# binary after another: run beside the others, the long segmented test (two encodes at a time)
# saved 6 of `make test`'s minutes but slowed them enough for a local S3 download to break.
run-e2e: ## the end-to-end tests alone, against the stack already up on LOCAL_STACK_PORT
	$(RUN) infra/local/check_cargo_lambda_deploy.sh
	$(RUN) cargo test --workspace --tests --no-fail-fast -- --ignored --test-threads $(E2E_THREADS) --show-output

# Long (minutes of transcoding on two cores), so CI does not run it; prints its counts.
soak: tools ## the load test: 200 uploads and 200 clip requests at once on the local stack
	$(call with_stack,run-soak)

run-soak: ## the load test alone, against the stack already up (make stack)
	$(RUN) cargo test -p e2e --features soak --test soak -- --ignored --nocapture

# ------------------------------------------------------------------ bench
bench: tools ## benchmarks, each printed beside its baseline [SECTIONS="cold-init rss overhead clips gif mediaconvert segmented"]
	$(call with_stack,run-bench)

run-bench: ## the benchmarks alone, against the stack already up (make stack) [SECTIONS=...]
	$(BUILD_WORKSPACE)
	$(RUN) $(DEV_BIN)/bench $(SECTIONS)

# ------------------------------------------------------------------ real AWS
# Refuses before anything is built when credentials, region or a required parameter are
# missing (infra/deploy/preflight.py); builds for ARCH, checks the artifacts, then deploys.
deploy: $(VENV)/.installed ## build for ARCH (default arm64) and deploy to your AWS account: PARAMS="CameraApiUrl=... RecordingsUrl=..." [AWS_STACK_NAME=]
	$(VENV)/bin/python infra/deploy/preflight.py --template infra/template.yaml $(PARAMS)
	$(MAKE) --no-print-directory build-aws ARCH=$(ARCH)
	$(VENV)/bin/python infra/ops/register_job_templates.py $(if $(AWS_REGION),--region $(AWS_REGION),) job-templates/mediaconvert/console/*.json
	$(VENV)/bin/sam deploy --template-file $(SAM_BUILD_DIR)-$(ARCH)/template.yaml --stack-name $(AWS_STACK_NAME) \
	  --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM $(if $(AWS_REGION),--region $(AWS_REGION),) \
	  --parameter-overrides Architecture=$(ARCH) $(PARAMS)

# Checked when make reads the Makefile, so a wrong FN is told before any tool is installed.
FN ?=
NAME ?= $(AWS_STACK_NAME)-$(FN)
ifneq ($(filter deploy-fn,$(MAKECMDGOALS)),)
ifneq ($(words $(FN)) $(filter $(FN),$(FUNCTIONS)),1 $(strip $(FN)))
$(error usage: make deploy-fn FN=function [NAME=deployed-function-name], where function is one of: $(FUNCTIONS))
endif
endif
deploy-fn: tools ## cargo lambda deploy of one function: FN=function [NAME=deployed-function-name]
	cd functions/$(FN) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release
	cd functions/$(FN) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda deploy --binary-name $(FN) $(NAME)

# ------------------------------------------------------------------ operations
# Dead letters back to work after a fix (infra/ops/redrive.py says what happens to each kind).
# No QUEUE: the stack's dead-letter queues and their depths. LOCAL=1: the local stack
# (STACK_NAME); otherwise the deployed AWS_STACK_NAME with your credentials (AWS_PROFILE, AWS_REGION).
QUEUE ?=
redrive: $(VENV)/.installed ## list the dead-letter queues, or move one's messages back to work [QUEUE=dlq] [LOCAL=1] [INCLUDE_REJECTED=1]
	$(if $(LOCAL),$(RUN) ,)$(VENV)/bin/python infra/ops/redrive.py --stack-name $(if $(LOCAL),$(STACK_NAME),$(AWS_STACK_NAME)) \
	  $(QUEUE) $(if $(INCLUDE_REJECTED),--include-rejected,)

clean-local: ## stop the local stacks (yours and the test stack), then delete LOCAL_DIR (the build cache too)
	infra/local/stack.sh down
	$(TEST_STACK_VARS) infra/local/stack.sh down
	rm -rf $(LOCAL_DIR)
