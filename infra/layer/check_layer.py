#!/usr/bin/env python3
"""Proves that a built ffmpeg layer is self-contained: its binaries work with nothing else around.

For each architecture, an empty root directory gets the unzipped layer under /opt and nothing
else but what the Lambda sandbox itself provides and a layer cannot: /tmp to write into and /dev
with its four character devices (null, zero, random, urandom; the static ffmpeg's C++ libraries
open /dev/urandom). For arm64 the root also holds the static qemu-aarch64 interpreter from
Debian's qemu-user-static, since this machine is x86_64. Inside that root (chroot, so this runs
as root) the layer's ffmpeg makes what the functions make: an H.264/AAC
faststart rendition scaled to 360p, a PNG thumbnail and a palette GIF, from a generated source.
The layer's ffprobe then reads the rendition back. Nothing from the host's /usr, /lib or /etc is
visible, so a missing shared library, loader or config file fails here, not on Lambda.

    check_layer.py [--arch x86_64|arm64|all] [--layer .local/layer]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ARCHES = ("x86_64", "arm64")
# Linux's memory devices (major 1), as in every Lambda sandbox.
DEVICES = {"null": 3, "zero": 5, "random": 8, "urandom": 9}
QEMU = {"arm64": Path("/usr/bin/qemu-aarch64-static")}
# What the functions ask of ffmpeg (rendition worker, clip trimmer, GIF converter), and the
# decoders for the inputs users upload.
ENCODERS = ("libx264", "aac", "png", "gif")
DECODERS = ("h264", "hevc", "vp9", "av1")
FILTERS = ("scale", "palettegen", "paletteuse", "concat", "fps")
# Lambda's limit for a function's code and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


class LayerBroken(Exception):
    pass


def tree_size(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def make_root(arch: str, layer: Path, root: Path) -> None:
    """root/opt = the layer as Lambda would unzip it (from the zip when there is one)."""
    opt = root / "opt"
    archive = layer / f"ffmpeg-layer-{arch}.zip"
    if archive.exists():
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                path = Path(z.extract(info, opt))
                mode = info.external_attr >> 16
                if mode:
                    path.chmod(mode & 0o7777)
    elif (layer / arch).is_dir():
        shutil.copytree(layer / arch, opt)
    else:
        raise LayerBroken(f"no layer for {arch} in {layer} (run `make layer`)")
    (root / "tmp").mkdir()
    dev = root / "dev"
    dev.mkdir()
    for name, minor in DEVICES.items():
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    if arch in QEMU:
        if not QEMU[arch].exists():
            raise LayerBroken(f"{QEMU[arch]} is missing (Debian package qemu-user-static; `make tools`)")
        shutil.copy2(QEMU[arch], root / QEMU[arch].name)


def runner(arch: str, root: Path):
    """A function running a command inside the root, as that architecture."""
    jail = ["chroot", str(root)]
    interpreter = [f"/{QEMU[arch].name}"] if arch in QEMU else []

    def run(*args: str, timeout: int = 300) -> str:
        done = subprocess.run(jail + interpreter + list(args), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise LayerBroken(f"{arch}: `{' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-600:]}")
        return done.stdout

    return run


def check(arch: str, layer: Path) -> str:
    if os.geteuid() != 0:
        raise LayerBroken("the chroot check needs root (chroot and mknod); make test runs as root in CI")
    with tempfile.TemporaryDirectory(prefix=f"layer-root-{arch}-") as scratch:
        root = Path(scratch)
        make_root(arch, layer, root)
        allowed = {"opt", "tmp", "dev"} | ({QEMU[arch].name} if arch in QEMU else set())
        present = {p.name for p in root.iterdir()}
        if present != allowed:
            raise LayerBroken(f"{arch}: the root holds {sorted(present)}, expected only {sorted(allowed)}")
        for tool in ("ffmpeg", "ffprobe"):
            binary = root / "opt" / "bin" / tool
            if not (binary.is_file() and os.access(binary, os.X_OK)):
                raise LayerBroken(f"{arch}: /opt/bin/{tool} is missing or not executable")
        run = runner(arch, root)

        version = run("/opt/bin/ffmpeg", "-hide_banner", "-version").splitlines()[0].split(" https://")[0]
        capabilities = run("/opt/bin/ffmpeg", "-hide_banner", "-encoders") + run(
            "/opt/bin/ffmpeg", "-hide_banner", "-decoders") + run("/opt/bin/ffmpeg", "-hide_banner", "-filters")
        words = set(capabilities.split())
        missing = [name for name in ENCODERS + DECODERS + FILTERS if name not in words]
        if missing:
            raise LayerBroken(f"{arch}: ffmpeg lacks {missing}")

        source = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=2",
                  "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"]
        run("/opt/bin/ffmpeg", "-hide_banner", "-loglevel", "error", *source, "-vf", "scale=-2:360",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
            "-movflags", "+faststart", "/tmp/rendition.mp4")
        run("/opt/bin/ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", "1", "-i", "/tmp/rendition.mp4",
            "-frames:v", "1", "/tmp/thumbnail.png")
        run("/opt/bin/ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "/tmp/rendition.mp4", "-filter_complex",
            "fps=10,scale=160:-1,split[a][b];[a]palettegen[p];[b][p]paletteuse", "/tmp/clip.gif")

        probe = json.loads(run("/opt/bin/ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                               "/tmp/rendition.mp4"))
        streams = {s["codec_type"]: s for s in probe["streams"]}
        video, audio = streams.get("video"), streams.get("audio")
        if not video or (video["codec_name"], video["width"], video["height"]) != ("h264", 640, 360):
            raise LayerBroken(f"{arch}: the rendition's video stream is {video}")
        if not audio or audio["codec_name"] != "aac":
            raise LayerBroken(f"{arch}: the rendition's audio stream is {audio}")
        duration = float(probe["format"]["duration"])
        if abs(duration - 2.0) > 0.1:
            raise LayerBroken(f"{arch}: the rendition lasts {duration} s, not 2")
        for made in ("thumbnail.png", "clip.gif"):
            if (root / "tmp" / made).stat().st_size == 0:
                raise LayerBroken(f"{arch}: {made} is empty")

        size = tree_size(root / "opt")
        return (f"layer {arch}: ok in an empty root ({', '.join(sorted(allowed))}); {version}; "
                f"rendition.mp4 h264 640x360 + aac, {duration:.2f} s, read by the layer's ffprobe; "
                f"thumbnail.png and clip.gif made; unzipped {size / 1e6:.1f} MB "
                f"({size / LAMBDA_UNZIPPED_LIMIT:.0%} of Lambda's 250 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHES + ("all",), default="all")
    parser.add_argument("--layer", type=Path, default=Path(".local/layer"))
    args = parser.parse_args()
    try:
        for arch in ARCHES if args.arch == "all" else (args.arch,):
            print(check(arch, args.layer), flush=True)
    except LayerBroken as broken:
        sys.exit(f"check_layer: {broken}")


if __name__ == "__main__":
    main()
