"""The Makefile as a newcomer meets it, and the one source of the local stack's settings.

`make help` lists every target with a line of its own; `make deploy-fn` names every function;
infra/local/stack.env is plain NAME=value lines that make, bash and a trivial parser all read;
`make test` runs its end-to-end tests on a stack of its own (TEST_STACK_PORT, TEST_STACK_STATE_DIR)
while the demo uses the user's. Nothing here starts anything: `make -n` only prints."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STACK_ENV = REPO / "infra" / "local" / "stack.env"
# The keys the Rust local services and harness read.
REQUIRED_KEYS = {
    "STACK_PORT",
    "CAMERA_API_PORT_OFFSET",
    "MEDIACONVERT_PORT_OFFSET",
    "ORIGIN_PORT_OFFSET",
    "GIF_SOURCES_PORT_OFFSET",
    "TEST_STACK_PORT",
}


def settings() -> dict[str, str]:
    """stack.env read the trivial way a Rust parser does: `#` lines and blank lines skipped."""
    pairs = {}
    for line in STACK_ENV.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            pairs[name] = value
    return pairs


def make(*args: str) -> subprocess.CompletedProcess:
    # As a user types it, whatever stack the caller (e.g. `make test`) runs on.
    env = {k: v for k, v in os.environ.items() if k not in {"LOCAL_STACK_PORT", "LOCAL_STATE_DIR", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_stack_env_is_plain_name_value_lines_with_every_key():
    for number, line in enumerate(STACK_ENV.read_text().splitlines(), 1):
        assert line == "" or line.startswith("#") or re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\s\"'$`\\]+", line), (
            f"stack.env:{number} is not a plain NAME=value line: {line!r}"
        )
    values = settings()
    assert REQUIRED_KEYS <= values.keys(), REQUIRED_KEYS - values.keys()
    ports = [int(values[key]) for key in REQUIRED_KEYS]
    assert all(0 < port < 65536 for port in ports)
    stack, test = int(values["STACK_PORT"]), int(values["TEST_STACK_PORT"])
    offsets = [int(values[key]) for key in REQUIRED_KEYS if key.endswith("_OFFSET")]
    assert not {stack + o for o in [0, *offsets]} & {test + o for o in [0, *offsets]}, "the two stacks' ports overlap"
    assert values["TEST_STACK_STATE_DIR"] != values["STACK_STATE_DIR"]


def test_help_lists_every_target_with_a_line():
    result = make("help")
    assert result.returncode == 0, result.stderr
    listed = dict(re.findall(r"^  make (\S+) +(.+)$", result.stdout, re.MULTILINE))
    assert not [t for t, text in listed.items() if text.startswith("??")], result.stdout
    database = make("-pn", "help").stdout
    phony = re.search(r"^\.PHONY: (.*)$", database, re.MULTILINE).group(1).split()
    assert set(phony) == set(listed), f"in .PHONY, not in help: {set(phony) - set(listed)}; the reverse: {set(listed) - set(phony)}"
    assert make().stdout == result.stdout, "help is the default goal"


def test_deploy_fn_names_every_function():
    functions = sorted(p.parent.name for p in (REPO / "functions").glob("*/Cargo.toml"))
    assert len(functions) >= 7
    for args in [(), ("FN=no-such-function",), ("FN=gif-api gif-converter",)]:
        result = make("deploy-fn", *args)
        assert result.returncode != 0
        usage = result.stderr
        assert "usage: make deploy-fn FN=" in usage, usage
        assert set(functions) <= set(re.findall(r"[\w-]+", usage)), usage


def builds_into(build_dir, printed):
    """Whether the printed commands run `sam build` into exactly `build_dir` (not a folder beside it)."""
    return re.search(rf"--build-dir {re.escape(build_dir)}(\s|$)", printed) is not None


def test_make_test_runs_its_end_to_end_tests_on_a_stack_of_its_own():
    values = settings()
    test_port, test_state = values["TEST_STACK_PORT"], values["TEST_STACK_STATE_DIR"]
    e2e = make("-n", "e2e")
    assert e2e.returncode == 0, e2e.stderr
    printed = e2e.stdout
    assert f"rm -rf {test_state}\n" in printed, "a fresh state each run"
    assert f"stack-down LOCAL_STACK_PORT={test_port} LOCAL_STATE_DIR={test_state}" in printed, "a left-over test stack is stopped first"
    assert f"trap 'make --no-print-directory stack-down LOCAL_STACK_PORT={test_port} LOCAL_STATE_DIR={test_state}' EXIT" in printed
    assert f">{test_state}/stack-outputs.json" in printed
    assert f"GifSourceLoopbackAllowList=127.0.0.1:{test_port}," in printed
    assert "cargo test --workspace --tests --no-fail-fast -- --ignored" in printed
    assert builds_into(values["SAM_BUILD_DIR"], printed), "the sam build cache is shared"
    assert make("-n", "test").stdout.count("make --no-print-directory e2e") == 1

    demo = make("-n", "demo").stdout
    assert f">{values['STACK_STATE_DIR']}/stack-outputs.json" in demo
    assert f"GifSourceLoopbackAllowList=127.0.0.1:{values['STACK_PORT']}," in demo
    assert builds_into(values["SAM_BUILD_DIR"], demo)
    assert test_port not in demo and test_state not in demo


def test_no_port_of_the_map_is_spelled_outside_stack_env():
    """The Makefile and the scripts ask stack.sh for ports; none writes one (or an offset) itself."""
    values = settings()
    stack, test = int(values["STACK_PORT"]), int(values["TEST_STACK_PORT"])
    offsets = [int(values[key]) for key in REQUIRED_KEYS if key.endswith("_OFFSET")]
    ports = {str(base + offset) for base in (stack, test) for offset in [0, *offsets]}
    files = [REPO / "Makefile", REPO / ".ci" / "run", *(REPO / "infra").glob("**/*.sh"), *(REPO / "infra").glob("**/*.py")]
    for path in files:
        if path.parent.name == "tests":
            continue
        text = path.read_text()
        spelled = sorted(p for p in ports if re.search(rf"(?<![0-9]){p}(?![0-9])", text))
        assert not spelled, f"{path.relative_to(REPO)} spells ports {spelled}: read infra/local/stack.env"
        assert not re.search(r"(LOCAL_STACK_PORT|PORT)\)?\s*\+\s*1[0-3]\b", text), f"{path.relative_to(REPO)} adds a port offset itself"
