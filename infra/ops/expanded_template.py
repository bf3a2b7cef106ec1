"""A template as CloudFormation sees it once AWS::LanguageExtensions has run: every Fn::ForEach
written out, one resource per item, with the logical ids the stack will have.

    expanded_template.py infra/template.yaml >expanded.json

The template checks (infra/tests), the emulator gap filler (infra/local/apply_emulator_gaps.py)
and the checkov scan (infra/ops/checkov_scan.py) read resources by logical id, and checkov does
not expand Fn::ForEach itself (it scans the loops as nothing). They all read the template through
`load`, which expands it with cfn-lint's implementation of the transform: the same one
`cfn-lint infra/template.yaml` validates, and one that keeps every intrinsic function the stack
resolves later (Fn::Sub, Ref, Fn::GetAtt) as it is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cfnlint.decode import decode
from cfnlint.template import Template

# cfn-lint keeps the transform in a private module; the version is pinned in
# infra/local/requirements-tools.txt, and infra/tests/test_template.py fails if it moves.
from cfnlint.template.transforms._language_extensions import language_extension

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"


def transforms_of(template: dict) -> list[str]:
    declared = template.get("Transform", [])
    return declared if isinstance(declared, list) else [declared]


def load(path: str | Path) -> dict:
    """The template at `path`, its Fn::ForEach loops expanded. Raises ValueError when it cannot
    be read or expanded."""
    template, errors = decode(str(path))
    if errors:
        raise ValueError(f"cannot read {path}: {[str(e) for e in errors]}")
    if LANGUAGE_EXTENSIONS not in transforms_of(template):
        return template
    # The region only matters to rules cfn-lint runs elsewhere, not to the expansion.
    matches, expanded = language_extension(Template(str(path), template, ["us-east-1"]))
    if matches or expanded is None:
        raise ValueError(f"cannot expand {path}: {[str(m) for m in matches]}")
    remaining = [t for t in transforms_of(expanded) if t != LANGUAGE_EXTENSIONS]
    expanded["Transform"] = remaining if len(remaining) != 1 else remaining[0]
    if not remaining:
        del expanded["Transform"]
    return expanded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("template")
    args = parser.parse_args()
    try:
        expanded = load(args.template)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    json.dump(expanded, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
