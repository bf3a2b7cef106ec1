#!/usr/bin/env python3
"""Registers MediaConvert job templates from files, as the console exports them.

    register_job_templates.py job-templates/mediaconvert/console/*.json [--region R]

Each file is one job template in the shape `aws mediaconvert create-job-template
--cli-input-json` takes (the console's "Export JSON"; a `get-job-template` answer's
`JobTemplate` works too: its read-only fields are dropped). A template that is not there yet is
created; one that is, is updated to the file. The submitter then runs it by name
(`MediaConvertTemplate` parameter).

The endpoint is boto3's: the regional MediaConvert endpoint on AWS, `AWS_ENDPOINT_URL_MEDIACONVERT`
for the local stack (`infra/local/stack.sh run` sets it). Exit status 1 names every file that
could not be registered.
"""

import argparse
import json
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# What GetJobTemplate answers besides the fields CreateJobTemplate takes.
READ_ONLY_FIELDS = ("Arn", "CreatedAt", "LastUpdated", "Type")
# What UpdateJobTemplate takes (all of CreateJobTemplate's but Tags).
UPDATE_FIELDS = (
    "Name",
    "Category",
    "Description",
    "Queue",
    "Settings",
    "AccelerationSettings",
    "StatusUpdateInterval",
    "Priority",
    "HopDestinations",
)


def template_from(path: Path) -> dict:
    body = json.loads(path.read_text())
    body = body.get("JobTemplate", body)
    for field in READ_ONLY_FIELDS:
        body.pop(field, None)
    if not body.get("Name") or not isinstance(body.get("Settings"), dict):
        raise ValueError("a job template needs a Name and Settings")
    return body


def register(client, body: dict) -> str:
    try:
        client.create_job_template(**body)
        return "created"
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ConflictException":
            raise
    client.update_job_template(**{k: v for k, v in body.items() if k in UPDATE_FIELDS})
    return "updated"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--region", help="default: the AWS configuration's")
    args = parser.parse_args()
    client = boto3.client("mediaconvert", region_name=args.region)
    failed = []
    for path in args.files:
        try:
            body = template_from(path)
            outcome = register(client, body)
            print(f"job template {body['Name']!r} {outcome} from {path}")
        except (OSError, ValueError, ClientError, BotoCoreError) as err:
            print(f"{path}: not registered: {err}", file=sys.stderr)
            failed.append(str(path))
    if failed:
        print(f"not registered: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
