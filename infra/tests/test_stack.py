"""infra/local/stack.sh starting and stopping the local stack.

A stop returns only once every process the stack started (ministack, the Lambda processes in its
process group, the local services) is gone and every port of the stack is free, so that a start
right after it works: `make stack-down` followed at once by `make stack` once failed with "local
services did not start". A start refuses, naming the port, when another process holds one.

Each test runs a stack of its own on PORT (not the user's STACK_PORT nor `make test`'s
TEST_STACK_PORT) with its state in a temporary folder. The real-ministack test needs
.venv-ministack (`make tools`; or MINISTACK_BIN); the others use small stand-ins for ministack
and local-services, so they run anywhere with python3."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "infra" / "local" / "stack.sh"
PORT = 4766

OUTPUTS = {
    "RecordingsBucketName": "test-recordings",
    "OutputBucketName": "test-output",
    "ResultsTopicArn": "arn:aws:sns:us-east-1:000000000000:test-results",
    "MediaConvertEventSource": "test.mediaconvert",
}
# What the local services must be started with, from OUTPUTS.
SERVICES_ENV = {
    "RECORDINGS_BUCKET": "test-recordings",
    "OUTPUT_BUCKET": "test-output",
    "RESULTS_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:test-results",
    "MEDIACONVERT_EVENT_SOURCE": "test.mediaconvert",
    "LOCAL_STACK_PORT": str(PORT),
}

# ministack's stand-in: answers the health check, and leaves a "Lambda process" in its process
# group that shares the gateway's listening socket and takes half a second to exit after SIGTERM, so
# the port stays taken until that process is gone.
FAKE_MINISTACK = """\
import http.server, os, signal, sys, time

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer((os.environ["BIND_HOST"], int(os.environ["GATEWAY_PORT"])), Health)
if os.fork() == 0:
    signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.5), os._exit(0)))
    while True:
        time.sleep(60)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server.serve_forever()
"""

# local-services' stand-in: listens on the services' ports of the map (from `stack.sh ports`
# for the LOCAL_STACK_PORT it is given), records its environment, and takes a moment to exit
# after SIGTERM.
FAKE_SERVICES = """\
import json, os, signal, socket, subprocess, time

names = [line.split() for line in subprocess.run(
    [{stack_sh!r}, "ports"], capture_output=True, text=True, check=True).stdout.splitlines()]
listeners = []
for name, port in names:
    if name != "stack":
        s = socket.socket()
        s.bind(("127.0.0.1", int(port)))
        s.listen()
        listeners.append(s)
with open("services-env.json", "w") as f:
    json.dump(dict(os.environ), f)
signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.3), os._exit(0)))
while True:
    time.sleep(60)
"""


def stack(state: Path, *args: str, env: dict[str, str] | None = None, check: bool = True):
    full_env = {**os.environ, "LOCAL_STACK_PORT": str(PORT), "LOCAL_STATE_DIR": str(state), **(env or {})}
    result = subprocess.run([str(STACK_SH), *args], env=full_env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"stack.sh {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
    return result


def port_map(state: Path) -> dict[str, int]:
    lines = stack(state, "ports").stdout.split("\n")
    return {name: int(port) for name, port in (line.split() for line in lines if line)}


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def bindable(port: int) -> bool:
    """Whether a server could listen on the port now (with SO_REUSEADDR, as servers do)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def pid(state: Path, name: str) -> int:
    return int((state / f"{name}.pid").read_text())


def assert_all_gone(state: Path, ports: dict[str, int], groups: list[int]) -> None:
    left = {pgid: group_members(pgid) for pgid in groups}
    assert not any(left.values()), f"processes left after stack.sh down: {left}"
    taken = [f"{name} {port}" for name, port in ports.items() if listening(port) or not bindable(port)]
    assert not taken, f"ports still taken after stack.sh down: {taken}"
    assert not (state / "ministack.pid").exists() and not (state / "services.pid").exists()


def write_outputs(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    outputs = [{"OutputKey": key, "OutputValue": value} for key, value in OUTPUTS.items()]
    (state / "stack-outputs.json").write_text(json.dumps(outputs))


def stand_in(folder: Path, name: str, source: str) -> Path:
    """An executable named like the program it stands in for (stack.sh checks the name)."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)
    return path


def stand_ins(folder: Path) -> dict[str, str]:
    """The environment that has stack.sh start the stand-ins for ministack and local-services."""
    return {
        "MINISTACK_BIN": str(stand_in(folder, "ministack", FAKE_MINISTACK)),
        "LOCAL_SERVICES_BIN": str(stand_in(folder, "local-services", FAKE_SERVICES.format(stack_sh=str(STACK_SH)))),
    }


def wait_until(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def state(tmp_path):
    """A state folder of the test's own; the test's stack is stopped whatever happens."""
    folder = tmp_path / "state"
    taken = [f"{name} {port}" for name, port in port_map(folder).items() if listening(port)]
    assert not taken, f"this test needs the ports of a stack on {PORT} free; taken: {taken}"
    yield folder
    stack(folder, "down", check=False)


def ministack_bin() -> Path | None:
    path = Path(os.environ.get("MINISTACK_BIN", REPO / ".venv-ministack" / "bin" / "ministack"))
    return path if os.access(path, os.X_OK) else None


def local_services_bin() -> Path | None:
    """The built local services, where stack.sh looks for them."""
    if "LOCAL_SERVICES_BIN" in os.environ:
        path = Path(os.environ["LOCAL_SERVICES_BIN"])
    else:
        path = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "local-services"
    return path if os.access(path, os.X_OK) else None


@pytest.mark.skipif(ministack_bin() is None, reason="ministack is not installed (make tools creates .venv-ministack)")
def test_the_real_stack_restarts_twice_in_a_row(state):
    env = {"MINISTACK_BIN": str(ministack_bin())}
    services = local_services_bin()
    if services is None:
        warnings.warn(
            "local-services is not built (cargo build -p local-services): only ministack was "
            "restarted; the local services part of this test was skipped"
        )
    else:
        env["LOCAL_SERVICES_BIN"] = str(services)
        write_outputs(state)
    ports = port_map(state)
    for _ in range(2):
        stack(state, "up", env=env)
        groups = [pid(state, "ministack")]
        if services is not None:
            stack(state, "services", env=env)
            groups.append(pid(state, "services"))
            assert all(listening(port) for port in ports.values()), ports
        else:
            assert listening(ports["stack"])
        stack(state, "down", env=env)
        assert_all_gone(state, ports, groups)


def test_down_waits_for_slow_processes_and_frees_every_port(state, tmp_path):
    env = stand_ins(tmp_path / "bin")
    write_outputs(state)
    ports = port_map(state)
    for _ in range(2):
        stack(state, "up", env=env)
        ministack = pid(state, "ministack")
        assert len(group_members(ministack)) == 2, "the stand-in and its Lambda process"
        stack(state, "services", env=env)
        first_services = pid(state, "services")
        # After a deploy the services are restarted with the new outputs: the old ones are gone.
        stack(state, "services", env=env)
        assert pid(state, "services") != first_services and not group_members(first_services)
        assert all(listening(port) for port in ports.values()), ports
        started_with = json.loads((state / "services-env.json").read_text())
        assert {key: started_with.get(key) for key in SERVICES_ENV} == SERVICES_ENV
        services = pid(state, "services")
        stack(state, "down", env=env)
        assert_all_gone(state, ports, [ministack, services])


def test_down_and_up_clear_what_a_crashed_ministack_left(state, tmp_path):
    env = stand_ins(tmp_path / "bin")
    ports = port_map(state)
    for command in ("down", "up"):
        stack(state, "up", env=env)
        ministack = pid(state, "ministack")
        os.kill(ministack, signal.SIGKILL)
        wait_until(lambda: ministack not in group_members(ministack))
        assert group_members(ministack), "its Lambda process is left, holding the gateway's socket"
        assert listening(ports["stack"])
        result = stack(state, command, env=env)
        assert "has exited but left processes in its group" in result.stderr, result.stderr
        assert not group_members(ministack)
        if command == "up":
            assert listening(ports["stack"]) and pid(state, "ministack") != ministack
            stack(state, "down", env=env)
        assert_all_gone(state, ports, [ministack])


@pytest.mark.parametrize("taken", ["stack", "gif_sources"])
def test_up_refuses_a_port_taken_by_another_process(state, tmp_path, taken):
    env = stand_ins(tmp_path / "bin")
    port = port_map(state)[taken]
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may be in TIME_WAIT
        other.bind(("127.0.0.1", port))
        other.listen()
        result = stack(state, "up", env=env, check=False)
    assert result.returncode != 0
    assert f"port {port} ({taken}) is taken" in result.stderr, result.stderr
    assert not (state / "ministack.pid").exists(), "nothing started"


def test_services_need_the_deployed_stack_outputs(state, tmp_path):
    env = stand_ins(tmp_path / "bin")
    stack(state, "up", env=env)
    result = stack(state, "services", env=env, check=False)
    assert result.returncode != 0 and "no stack outputs" in result.stderr, result.stderr
    (state / "stack-outputs.json").write_text(json.dumps([{"OutputKey": "OutputBucketName", "OutputValue": "b"}]))
    result = stack(state, "services", env=env, check=False)
    assert result.returncode != 0, result.stderr
    assert "lacks RecordingsBucketName, ResultsTopicArn, MediaConvertEventSource" in result.stderr, result.stderr


def test_state_and_ports_follow_the_settings(tmp_path):
    """`env` (what `run` gives a command) names this stack's port, state folder and outputs."""
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in stack(tmp_path, "env").stdout.splitlines()
    )
    assert exported["LOCAL_STACK_PORT"] == str(PORT)
    assert exported["LOCAL_STATE_DIR"] == str(tmp_path)
    assert exported["STACK_OUTPUTS"] == str(tmp_path / "stack-outputs.json")
    assert exported["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{PORT}"
    ports = port_map(tmp_path)
    assert exported["AWS_ENDPOINT_URL_MEDIACONVERT"] == f"http://127.0.0.1:{ports['mediaconvert']}"
    assert len(set(ports.values())) == 5 and min(ports.values()) == PORT
