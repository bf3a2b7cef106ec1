"""Runs checkov on a CloudFormation template and fails on any failed check or parsing error.

    checkov_scan.py --checkov .venv-checkov/bin/checkov infra/template.yaml

checkov itself exits 0 when it cannot parse the template (it then checks nothing), so the
verdict is taken from its JSON summary instead: failed checks are listed one a line, then the
counts. Checks that do not apply are skipped in the template, on the resource, each with its
one-line reason (infra/tests/test_template.py holds every skip to having one).

checkov does not expand AWS::LanguageExtensions: it would scan each Fn::ForEach loop as nothing
and pass. It scans the template with its loops written out (expanded_template.py) instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import expanded_template


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkov", required=True, help="the checkov executable")
    parser.add_argument("template")
    args = parser.parse_args()

    try:
        expanded = expanded_template.load(args.template)
    except ValueError as e:
        print(f"checkov {args.template}: {e}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        scanned = Path(scratch) / (Path(args.template).stem + ".expanded.json")
        scanned.write_text(json.dumps(expanded, indent=1))
        # --skip-download: nothing is fetched from checkov's vendor (offline, and the same
        # result everywhere); the checks themselves ship with the package.
        run = subprocess.run(
            [args.checkov, "--file", str(scanned), "--framework", "cloudformation", "--skip-download", "--quiet", "--output", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
    try:
        report = json.loads(run.stdout)
    except ValueError:
        print(run.stdout, run.stderr, sep="\n", file=sys.stderr)
        print(f"checkov {args.template}: no report (exit {run.returncode})", file=sys.stderr)
        return 1
    # One framework gives one report; with nothing to report checkov prints a bare summary.
    report = report[0] if isinstance(report, list) else report
    summary = report.get("summary", report)
    for failed in report.get("results", {}).get("failed_checks", []):
        print(f"FAILED {failed['check_id']} {failed['resource']}: {failed['check_name']}")
    print(
        f"checkov {args.template}: {summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, "
        f"{summary.get('skipped', 0)} skipped, {summary.get('parsing_errors', 0)} parsing errors"
    )
    if summary.get("parsing_errors", 0) or summary.get("failed", 0) or not summary.get("passed", 0):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
