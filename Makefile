# The front door. `make demo` and `make test` work on a fresh machine with only the Rust
# toolchain: they install what they need (Debian's ffmpeg, two project venvs) on first use.
#
#   make demo        the whole pipeline on the local stack with a sample video
#   make test        unit tests, template checks, then end-to-end tests on the local stack (their counts printed)
#   make soak        the load test: 200 uploads and 200 clip requests at once on the local stack
#   make bench       benchmarks, each printed beside its baseline (SECTIONS="cold-init rss overhead clips")
#   make lint        cargo fmt --check, clippy -D warnings, cfn-lint and checkov on the template
#   make stack       start the local stack and deploy infra/template.yaml into it (leaves it up)
#   make stack-down  stop the local stack
#   make build       sam build (cargo lambda build --release for every function)
#   make deploy      sam build + sam deploy to a real AWS account (your credentials)
#   make deploy-fn FN=upload-publisher [NAME=function-name]   cargo lambda deploy of one function
#   make redrive [QUEUE=dlq] [LOCAL=1] [INCLUDE_REJECTED=1]   list the dead-letter queues, or move
#                    one's messages back to work (LOCAL=1: the local stack; else AWS_STACK_NAME)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

STACK_NAME ?= video-suite
AWS_STACK_NAME ?= video-suite
LOCAL := .local
VENV := .venv
VENV_MS := .venv-ministack
VENV_CK := .venv-checkov
PY ?= python3
RUN := infra/local/stack.sh run
SAM_BUILD_DIR := $(LOCAL)/sam-build
export SAM_CLI_BETA_RUST_CARGO_LAMBDA := 1
export SAM_CLI_TELEMETRY := 0
# Parameters for the local deployment only (same template): tools on the host PATH, short
# timeouts so that redelivery after a crash is quick to observe. The local services
# (infra/local/devstack/src/services) listen from LOCAL_STACK_PORT + 10: the camera API stand-in
# (+10), MediaConvert (+11), the CloudFront origin stand-in (+12), GIF test sources (+13).
# MediaConvert's job events come from the local MediaConvert under its own source (EventBridge
# refuses aws.* sources from PutEvents), and public URLs point at the local CloudFront stand-in. GIF sources: the local S3
# and the local services' gif_sources are on loopback, so exactly those two sockets are
# allow-listed (on AWS the list stays empty), and a small size cap keeps the oversize tests quick.
LOCAL_STACK_PORT ?= 4566
export LOCAL_STACK_PORT
SERVICES_PORT := $(shell echo $$(( $(LOCAL_STACK_PORT) + 10 )))
CAMERA_API_URL := http://127.0.0.1:$(SERVICES_PORT)
ORIGIN_URL := http://127.0.0.1:$(shell echo $$(( $(LOCAL_STACK_PORT) + 12 )))
GIF_SOURCES_PORT := $(shell echo $$(( $(LOCAL_STACK_PORT) + 13 )))
LOCAL_PARAMETERS := FfmpegPath=ffmpeg FfprobePath=ffprobe WorkerTimeoutSeconds=120 WorkerVisibilityTimeoutSeconds=130 WorkerReservedConcurrency=4 \
  MediaConvertEventSource=devstack.mediaconvert PublicBaseUrl=$(ORIGIN_URL) \
  CameraApiUrl=$(CAMERA_API_URL) RecordingsUrl=$(CAMERA_API_URL)/recordings \
  ClipRequeueDelaySeconds=3 ClipPendingLimitSeconds=60 \
  GifSourceLoopbackAllowList=127.0.0.1:$(LOCAL_STACK_PORT),127.0.0.1:$(GIF_SOURCES_PORT) GifMaxSourceBytes=20000000 \
  GifConverterTimeoutSeconds=120 GifVisibilityTimeoutSeconds=130
E2E_THREADS ?= 3

.PHONY: help tools demo test unit lint soak bench stack stack-down stack-up build deploy deploy-fn redrive clean-local

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

# ------------------------------------------------------------------ tools
tools: $(VENV)/.installed $(VENV_MS)/.installed $(VENV_CK)/.installed $(LOCAL)/.ffmpeg $(LOCAL)/.chromium

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

$(LOCAL)/.ffmpeg:
	@mkdir -p $(LOCAL)
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
	  echo "installing ffmpeg (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg >/dev/null; \
	fi
	@ffmpeg -hide_banner -encoders 2>/dev/null | grep libx264 >/dev/null || { echo "ffmpeg lacks libx264"; exit 1; }
	touch $@

# Headless Chromium checks the origin server's page (tests/mediaconvert.rs).
$(LOCAL)/.chromium:
	@mkdir -p $(LOCAL)
	@if ! command -v chromium >/dev/null; then \
	  echo "installing chromium (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	touch $@

# ------------------------------------------------------------------ local stack
stack-up: tools
	cargo build --quiet -p local-services
	infra/local/stack.sh up

build: tools
	$(RUN) sam build --template-file infra/template.yaml --build-dir $(SAM_BUILD_DIR)

# Deploys the same template a real account gets, with `sam deploy`, then records the outputs.
stack: stack-up build
	$(RUN) sam deploy --template-file $(SAM_BUILD_DIR)/template.yaml --stack-name $(STACK_NAME) \
	  --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM --no-confirm-changeset \
	  --no-fail-on-empty-changeset --parameter-overrides $(LOCAL_PARAMETERS) >$(LOCAL)/sam-deploy.log 2>&1 \
	  || { tail -n 40 $(LOCAL)/sam-deploy.log; exit 1; }
	$(RUN) sam list stack-outputs --stack-name $(STACK_NAME) --output json >$(LOCAL)/stack-outputs.json
	$(RUN) $(VENV)/bin/python infra/local/apply_emulator_gaps.py --stack-name $(STACK_NAME) \
	  --template infra/template.yaml --parameter-overrides $(LOCAL_PARAMETERS)
	@echo "local stack '$(STACK_NAME)' deployed; outputs in $(LOCAL)/stack-outputs.json"

stack-down:
	infra/local/stack.sh down

# ------------------------------------------------------------------ demo
# The stack stops when the demo ends; run it from a terminal to keep the page up until Enter.
demo: tools
	@trap 'infra/local/stack.sh down' EXIT; \
	$(MAKE) --no-print-directory stack; \
	$(RUN) cargo run --quiet -p demo --bin demo

# ------------------------------------------------------------------ tests
unit:
	cargo test --workspace --quiet

lint: tools
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	$(VENV)/bin/cfn-lint infra/template.yaml
	@# Reached only when cfn-lint exited 0, which it does only with no error, warning or
	@# informational finding; the ignores are the template's own cfn-lint metadata entries.
	@echo "cfn-lint infra/template.yaml: 0 errors, 0 warnings, $$(grep -c 'cfn-lint:' infra/template.yaml || true) ignores"
	$(VENV)/bin/python infra/ops/checkov_scan.py --checkov $(VENV_CK)/bin/checkov infra/template.yaml

test: lint
	$(VENV)/bin/pytest -q infra/tests
	cargo test --workspace
	@trap 'infra/local/stack.sh down' EXIT; \
	$(MAKE) --no-print-directory stack; \
	$(RUN) infra/local/check_cargo_lambda_deploy.sh; \
	$(RUN) cargo test -p e2e --tests -- --ignored --test-threads $(E2E_THREADS) --show-output

# Long (minutes of transcoding on two cores), so CI does not run it; prints its counts.
soak: tools
	@trap 'infra/local/stack.sh down' EXIT; \
	$(MAKE) --no-print-directory stack; \
	$(RUN) cargo test -p e2e --features soak --test soak -- --ignored --nocapture

# ------------------------------------------------------------------ bench
bench: tools
	@trap 'infra/local/stack.sh down' EXIT; \
	$(MAKE) --no-print-directory stack; \
	$(RUN) cargo run --quiet -p bench --bin bench -- $(SECTIONS)

# ------------------------------------------------------------------ real AWS
deploy: tools
	$(VENV)/bin/sam build --template-file infra/template.yaml --build-dir $(SAM_BUILD_DIR)-aws
	$(VENV)/bin/sam deploy --template-file $(SAM_BUILD_DIR)-aws/template.yaml --stack-name $(AWS_STACK_NAME) \
	  --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM $(if $(PARAMS),--parameter-overrides $(PARAMS),)

FN ?=
NAME ?= $(AWS_STACK_NAME)-$(FN)
deploy-fn: tools
	@test -n "$(FN)" || { echo "usage: make deploy-fn FN=upload-publisher|rendition-worker [NAME=deployed-function-name]"; exit 1; }
	cd functions/$(FN) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release
	cd functions/$(FN) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda deploy --binary-name $(FN) $(NAME)

# ------------------------------------------------------------------ operations
# Dead letters back to work after a fix (infra/ops/redrive.py says what happens to each kind).
# No QUEUE: the stack's dead-letter queues and their depths. LOCAL=1: the local stack
# (STACK_NAME); otherwise the deployed AWS_STACK_NAME with your credentials (AWS_PROFILE, AWS_REGION).
QUEUE ?=
redrive: $(VENV)/.installed
	$(if $(LOCAL),$(RUN) ,)$(VENV)/bin/python infra/ops/redrive.py --stack-name $(if $(LOCAL),$(STACK_NAME),$(AWS_STACK_NAME)) \
	  $(QUEUE) $(if $(INCLUDE_REJECTED),--include-rejected,)

clean-local: stack-down
	rm -rf $(LOCAL)
