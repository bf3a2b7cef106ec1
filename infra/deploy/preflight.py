#!/usr/bin/env python3
"""What `make deploy` checks before it builds or creates anything in an AWS account.

A deployment that stops half-way leaves a stack in ROLLBACK_COMPLETE that must be deleted by
hand, so everything knowable beforehand is checked first, and each refusal says what to do:
- every template parameter without a default (CameraApiUrl, RecordingsUrl) is given in PARAMS,
  and no parameter given is unknown to the template;
- the architecture comes from ARCH alone (it picks the build as well as the parameter);
- an AWS region is configured (AWS_REGION, AWS_DEFAULT_REGION or the profile's region);
- credentials are found, and STS accepts them (prints the account the stack will go to).

    preflight.py --template infra/template.yaml [Name=Value ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import boto3
import botocore.exceptions
from cfnlint.decode import decode


def refuse(message: str) -> None:
    sys.exit(f"make deploy: refused before building or deploying anything.\n  {message}")


def parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            refuse(f"PARAMS entry {pair!r} is not Name=Value")
        params[name] = value
    return params


def check_parameters(template: Path, params: dict[str, str]) -> None:
    parsed, errors = decode(str(template))
    if errors:
        refuse(f"cannot read {template}: {errors[0]}")
    declared = parsed.get("Parameters", {})
    unknown = sorted(set(params) - set(declared))
    if unknown:
        refuse(f"PARAMS names parameters the template does not have: {', '.join(unknown)}")
    if "Architecture" in params:
        refuse("set the architecture with ARCH=arm64|x86_64, not in PARAMS: it picks the build too")
    missing = [name for name, spec in declared.items() if "Default" not in spec and not params.get(name)]
    if missing:
        lines = [f"{name}: {' '.join(str(declared[name].get('Description', '')).split())}" for name in missing]
        example = " ".join(f"{name}=..." for name in missing)
        refuse("required parameters are missing:\n    " + "\n    ".join(lines)
               + f"\n  e.g. make deploy PARAMS=\"{example}\"")


def check_account() -> str:
    # AWS_REGION is what the AWS CLI v2 and SDKs read; boto3 reads only AWS_DEFAULT_REGION.
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    if not session.region_name:
        refuse("no AWS region: set AWS_REGION (e.g. export AWS_REGION=eu-west-1) or a region in your "
               "profile (aws configure)")
    if session.get_credentials() is None:
        refuse("no AWS credentials: set AWS_PROFILE to a configured profile, run `aws configure` or "
               "`aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    try:
        identity = session.client("sts").get_caller_identity()
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        refuse(f"AWS did not accept the credentials found ({error}); refresh them and retry")
    return f"account {identity['Account']} as {identity['Arn']}, region {session.region_name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("params", nargs="*", help="Name=Value, as in PARAMS")
    args = parser.parse_args()
    check_parameters(args.template, parse_params(args.params))
    print(f"make deploy: deploying to {check_account()}")


if __name__ == "__main__":
    main()
