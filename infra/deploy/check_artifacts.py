#!/usr/bin/env python3
"""Checks what `sam build` (and optionally `sam package`) made before anything is deployed.

For a build directory of one architecture:
- every function of the template has a `bootstrap`: executable, an ELF of that architecture,
  needing no glibc newer than Lambda's provided.al2023 has (2.34);
- the ffmpeg layer (when the stack builds its own) has bin/ffmpeg and bin/ffprobe, executable,
  of that architecture, and its licence files;
- each function with the layer stays under Lambda's 250 MB unzipped limit.

With --packaged-template (the output of `sam package`), every CodeUri / ContentUri it names is
read back from S3 (the endpoint in AWS_ENDPOINT_URL, the local stack's) and the same checks run
on the zips themselves: the bootstrap's and binaries' execute bits survive zipping, and each
zip's size is printed.

    check_artifacts.py --build-dir .local/sam-build-arm64 --arch arm64 [--packaged-template F]
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
import expanded_template  # noqa: E402  (infra/ops: the template with Fn::ForEach written out)

# ELF e_machine values (the ELF specification's registry).
MACHINES = {"x86_64": 0x3E, "arm64": 0xB7}
# Lambda's provided.al2023 runtime has glibc 2.34.
MAX_GLIBC = (2, 34)
UNZIPPED_LIMIT = 250 * 1024 * 1024
LAYER_FILES = ("bin/ffmpeg", "bin/ffprobe", "licenses/ffmpeg/GPL-3.0.txt", "licenses/ffmpeg/NOTICE.md")
TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


class Broken(Exception):
    pass


def elf_machine(head: bytes, what: str) -> int:
    if head[:4] != b"\x7fELF" or head[4] != 2:
        raise Broken(f"{what} is not a 64-bit ELF executable")
    little = head[5] == 1
    return int.from_bytes(head[18:20], "little" if little else "big")


def check_elf(head: bytes, arch: str, what: str) -> None:
    machine = elf_machine(head, what)
    if machine != MACHINES[arch]:
        names = {v: k for k, v in MACHINES.items()}
        raise Broken(f"{what} is built for {names.get(machine, hex(machine))}, not {arch}")


def newest_glibc(path: Path) -> tuple[int, ...]:
    """The newest GLIBC_x.y symbol version the binary needs (readelf reads any architecture)."""
    out = subprocess.run(["readelf", "--version-info", "--wide", str(path)], capture_output=True, text=True,
                         check=True).stdout
    versions = [tuple(int(p) for p in v.split(".")) for v in re.findall(r"Name: GLIBC_([0-9.]+)", out)]
    return max(versions, default=(0,))


def functions_and_layer() -> tuple[list[str], str | None]:
    resources = expanded_template.load(TEMPLATE)["Resources"]
    functions = sorted(k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function")
    layers = [k for k, v in resources.items() if v["Type"] == "AWS::Serverless::LayerVersion"]
    return functions, (layers[0] if layers else None)


def tree_size(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def check_build(build_dir: Path, arch: str) -> list[str]:
    functions, layer = functions_and_layer()
    lines = []
    layer_size = 0
    if layer:
        root = build_dir / layer
        for name in LAYER_FILES:
            if not (root / name).is_file():
                raise Broken(f"layer {layer}: {name} is missing in {root}")
        for tool in ("bin/ffmpeg", "bin/ffprobe"):
            path = root / tool
            if not path.stat().st_mode & 0o111:
                raise Broken(f"layer {layer}: {tool} is not executable")
            check_elf(path.read_bytes()[:64], arch, f"layer {layer}: {tool}")
        layer_size = tree_size(root)
        lines.append(f"  {layer:<32} layer    unzipped {layer_size / 1e6:7.1f} MB  ffmpeg, ffprobe: {arch} ELF, executable")
    for function in functions:
        bootstrap = build_dir / function / "bootstrap"
        if not bootstrap.is_file():
            raise Broken(f"{function}: no bootstrap in {bootstrap.parent}")
        if not bootstrap.stat().st_mode & 0o111:
            raise Broken(f"{function}: bootstrap is not executable")
        check_elf(bootstrap.read_bytes()[:64], arch, f"{function}: bootstrap")
        glibc = newest_glibc(bootstrap)
        if glibc > MAX_GLIBC:
            raise Broken(f"{function}: bootstrap needs GLIBC_{'.'.join(map(str, glibc))}; "
                         f"provided.al2023 has {'.'.join(map(str, MAX_GLIBC))}")
        size = tree_size(bootstrap.parent)
        total = size + layer_size
        if total > UNZIPPED_LIMIT:
            raise Broken(f"{function}: {total / 1e6:.1f} MB with the layer, over Lambda's 250 MB unzipped")
        lines.append(f"  {function:<32} function unzipped {size / 1e6:7.1f} MB  {arch} ELF, glibc ≤ "
                     f"{'.'.join(map(str, glibc))}, with layer {total / 1e6:6.1f} MB of 250")
    return lines


def s3_uris(node, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("CodeUri", "ContentUri") and isinstance(value, str) and value.startswith("s3://"):
                found.append(value)
            else:
                s3_uris(value, found)
    elif isinstance(node, list):
        for value in node:
            s3_uris(value, found)
    return found


def check_packaged(packaged: Path, arch: str) -> list[str]:
    import boto3  # from the tools venv (aws-sam-cli's dependency)
    from cfnlint.decode import decode

    template, errors = decode(str(packaged))
    if errors:
        raise Broken(f"{packaged}: {errors[0]}")
    s3 = boto3.client("s3")
    lines = []
    for uri in sorted(set(s3_uris(template["Resources"], []))):
        bucket, key = uri[len("s3://"):].split("/", 1)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            entries = {i.filename: i for i in z.infolist()}
            unzipped = sum(i.file_size for i in entries.values())
            executables = [n for n in ("bootstrap", "bin/ffmpeg", "bin/ffprobe") if n in entries]
            if not executables:
                raise Broken(f"{uri}: neither a function (bootstrap) nor the layer (bin/ffmpeg)")
            for name in executables:
                if not (entries[name].external_attr >> 16) & 0o111:
                    raise Broken(f"{uri}: {name} lost its execute bit in the zip")
                with z.open(name) as f:
                    check_elf(f.read(64), arch, f"{uri}: {name}")
        kind = "layer   " if "bin/ffmpeg" in executables else "function"
        lines.append(f"  {kind} zip {len(body) / 1e6:6.1f} MB, unzipped {unzipped / 1e6:6.1f} MB  "
                     f"{', '.join(executables)}: {arch}, executable  {uri}")
    if not lines:
        raise Broken(f"{packaged} names no S3 artifact")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, required=True)
    parser.add_argument("--arch", choices=sorted(MACHINES), required=True)
    parser.add_argument("--packaged-template", type=Path)
    args = parser.parse_args()
    try:
        lines = check_build(args.build_dir, args.arch)
        print(f"sam build {args.arch} ({args.build_dir}): {len(lines)} artifacts ok")
        print("\n".join(lines))
        if args.packaged_template:
            lines = check_packaged(args.packaged_template, args.arch)
            print(f"sam package {args.arch} ({args.packaged_template}): {len(lines)} zips ok")
            print("\n".join(lines))
    except Broken as broken:
        sys.exit(f"check_artifacts: {broken}")


if __name__ == "__main__":
    main()
