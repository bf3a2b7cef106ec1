"""The ffmpeg layer (infra/layer): pinned, self-contained, and runnable on both architectures.

`make test` builds the layer first (make layer); the chroot proof runs each architecture's
binaries in a root that holds only the layer (arm64 under qemu-user-static), see
infra/layer/check_layer.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[1]
REPO = INFRA.parent
LAYER_OUT = REPO / ".local" / "layer"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, INFRA / "layer" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_layer = load("check_layer")
PINS = json.loads((INFRA / "layer" / "packages.json").read_text())


def test_every_binary_of_both_architectures_is_pinned_by_version_and_checksums():
    assert sorted(k for k in PINS if not k.startswith("_")) == ["arm64", "x86_64"]
    for arch in ("arm64", "x86_64"):
        assert sorted(PINS[arch]) == ["ffmpeg", "ffprobe"]
        for tool, pin in PINS[arch].items():
            for field in ("package", "version", "archive", "member", "package_license", "binary"):
                assert pin[field], (arch, tool, field)
            for field in ("archive_sha256", "binary_sha256"):
                assert len(pin[field]) == 64 and int(pin[field], 16) >= 0, (arch, tool, field)
            assert "GPL" in pin["binary"], f"{arch} {tool}: say the binary's licence"


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_the_layer_runs_alone_in_an_empty_root(arch):
    if not (LAYER_OUT / arch).is_dir():
        pytest.fail(f"no {arch} layer in {LAYER_OUT}: run `make layer` (make test does)")
    summary = check_layer.check(arch, LAYER_OUT)
    print(summary)
    assert summary.startswith(f"layer {arch}: ok")


def test_a_binary_that_does_not_match_its_pin_is_refused(tmp_path):
    """The build refuses a download whose bytes differ from the pin (and deletes it)."""
    pins = json.loads((INFRA / "layer" / "packages.json").read_text())
    cache = tmp_path / "downloads"
    cache.mkdir()
    pin = pins["x86_64"]["ffprobe"]
    (cache / pin["archive"]).write_bytes(b"not the package")
    build_layer = load("build_layer")
    with pytest.raises(SystemExit) as refused:
        build_layer.download(pin, cache)
    assert "is not the pinned" in str(refused.value)
    assert not (cache / pin["archive"]).exists()


def test_the_layer_ships_its_licences():
    for arch in ("x86_64", "arm64"):
        licenses = LAYER_OUT / arch / "licenses" / "ffmpeg"
        if not licenses.is_dir():
            pytest.fail(f"no {arch} layer in {LAYER_OUT}: run `make layer`")
        assert "GNU GENERAL PUBLIC LICENSE" in (licenses / "GPL-3.0.txt").read_text()
        notice = (licenses / "NOTICE.md").read_text()
        for pin in PINS[arch].values():
            assert pin["binary_sha256"] in notice and pin["package"] in notice
        assert {p.name for p in licenses.iterdir()} >= {"ffmpeg-package-license.txt", "ffprobe-package-license.txt"}
