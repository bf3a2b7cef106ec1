#!/usr/bin/env python3
"""Starts every built function as Lambda would and waits for its first Runtime API `/next`.

A bootstrap that reaches `/next` has linked, loaded, read its configuration and built its
clients at cold start: what is left can only fail on a real event. Each function runs with the
environment its deployed twin on the local stack has (read back with GetFunctionConfiguration),
against a small Runtime API stand-in on loopback; arm64 bootstraps run under qemu's user-mode
emulation (Debian's qemu-user-static), so this proves the cross-compiled binaries on an x86_64
machine. The function is killed once it has asked for work.

    check_bootstraps.py --build-dir .local/sam-build-arm64 --arch arm64 --stack-name video-suite

Run it through `infra/local/stack.sh run` (the local stack's endpoint and credentials).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_artifacts import functions_and_layer  # noqa: E402

# A bootstrap links glibc dynamically (Lambda's provided.al2023 supplies it); on this machine
# Debian's libc6-arm64-cross is that glibc for arm64, and -L points qemu's loader at it.
QEMU = {"arm64": ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"], "x86_64": []}
NEXT = "/2018-06-01/runtime/invocation/next"
TIMEOUT_S = 60


class RuntimeApi:
    """Answers nothing: it only records when `/next` is first asked for."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path == NEXT:
                    outer.asked.set()
                    # Held open, as Lambda holds /next until an event arrives.
                    outer.release.wait(TIMEOUT_S)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address
        return f"{host}:{port}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def deployed_environments(stack_name: str) -> dict[str, dict[str, str]]:
    cloudformation, lambda_ = boto3.client("cloudformation"), boto3.client("lambda")
    found = {}
    for resource in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]:
        if resource["ResourceType"] == "AWS::Lambda::Function":
            config = lambda_.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
            found[resource["LogicalResourceId"]] = config.get("Environment", {}).get("Variables", {})
    return found


def first_next(bootstrap: Path, arch: str, environment: dict[str, str], name: str) -> float:
    api = RuntimeApi()
    env = {**os.environ, **environment,
           "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": name,
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}", "AWS_LAMBDA_LOG_STREAM_NAME": "check"}
    started = time.monotonic()
    child = subprocess.Popen(QEMU[arch] + [str(bootstrap)], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = started + TIMEOUT_S
        while not api.asked.wait(0.05):
            if child.poll() is not None:
                raise SystemExit(f"check_bootstraps: {name} ({arch}) exited {child.returncode} before /next: "
                                 f"{child.stderr.read().strip()[-800:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"check_bootstraps: {name} ({arch}) did not ask for work within {TIMEOUT_S} s")
        return time.monotonic() - started
    finally:
        child.kill()
        child.wait()
        api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, required=True)
    parser.add_argument("--arch", choices=sorted(QEMU), required=True)
    parser.add_argument("--stack-name", required=True)
    args = parser.parse_args()
    environments = deployed_environments(args.stack_name)
    functions, _ = functions_and_layer()
    how = "under qemu-aarch64-static" if QEMU[args.arch] else "natively"
    print(f"bootstraps {args.arch} ({args.build_dir}), {how}: process start → first Runtime API /next")
    for function in functions:
        if function not in environments:
            raise SystemExit(f"check_bootstraps: {function} is not deployed in stack {args.stack_name}")
        seconds = first_next(args.build_dir / function / "bootstrap", args.arch, environments[function], function)
        print(f"  {function:<32} reached /next in {seconds * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
