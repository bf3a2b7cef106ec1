"""`make deploy` refuses, before building anything, what would fail half-way through a stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parents[1]
REPO = INFRA.parent
PREFLIGHT = INFRA / "deploy" / "preflight.py"
REQUIRED = "CameraApiUrl=https://cameras.example.com RecordingsUrl=https://cameras.example.com/recordings"


def preflight(tmp_path: Path, *params: str, **env: str) -> subprocess.CompletedProcess:
    # No AWS configuration at all: an empty home, no AWS_* variables from this machine.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
                 AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true", **env)
    return subprocess.run([sys.executable, str(PREFLIGHT), "--template", str(INFRA / "template.yaml"), *params],
                          capture_output=True, text=True, env=clean, timeout=60)


def test_missing_required_parameters_are_named_with_an_example(tmp_path):
    done = preflight(tmp_path)
    assert done.returncode != 0
    assert "refused before building or deploying anything" in done.stderr
    assert "CameraApiUrl" in done.stderr and "RecordingsUrl" in done.stderr
    assert 'make deploy PARAMS="CameraApiUrl=... RecordingsUrl=..."' in done.stderr


def test_unknown_parameters_and_architecture_in_params_are_refused(tmp_path):
    done = preflight(tmp_path, *REQUIRED.split(), "CameraApiURL=typo")
    assert done.returncode != 0 and "CameraApiURL" in done.stderr
    done = preflight(tmp_path, *REQUIRED.split(), "Architecture=x86_64")
    assert done.returncode != 0 and "ARCH=" in done.stderr


def test_no_region_is_refused(tmp_path):
    done = preflight(tmp_path, *REQUIRED.split())
    assert done.returncode != 0
    assert "no AWS region" in done.stderr


def test_no_credentials_are_refused(tmp_path):
    done = preflight(tmp_path, *REQUIRED.split(), AWS_REGION="eu-west-1")
    assert done.returncode != 0
    assert "no AWS credentials" in done.stderr


def test_make_deploy_stops_at_the_preflight(tmp_path):
    """The Makefile runs the preflight before any build: with nothing configured, make deploy
    ends at once with the preflight's message (make -n shows the order)."""
    dry = subprocess.run(["make", "-n", "deploy", "PARAMS=" + REQUIRED], cwd=REPO, capture_output=True, text=True)
    lines = [line for line in dry.stdout.splitlines() if line.strip()]
    first = next(i for i, line in enumerate(lines) if "preflight.py" in line)
    build = next(i for i, line in enumerate(lines) if "build-aws" in line or "sam build" in line)
    assert first < build, dry.stdout
