"""Applies what the local emulator's CloudFormation does not (yet) apply from the template.

ministack deploys infra/template.yaml, but silently ignores a few properties. Rather than keep a
second, hand-written copy of them, this script reads them from the same template and applies
them through the service APIs after `sam deploy`:

* `ReservedConcurrentExecutions` on functions  -> lambda:PutFunctionConcurrency, except on the
  functions invoked asynchronously (those with an `EventInvokeConfig`: S3 and EventBridge
  targets). AWS retries a throttled asynchronous event for up to 6 hours without counting the
  throttle against `MaximumRetryAttempts`; the emulator counts each throttle as a failed attempt
  and dead-letters the event after three within seconds, so a burst of uploads above the cap
  would land in the on-failure DLQ locally where AWS would simply run it a little later. Those
  functions run uncapped locally (any earlier local cap is removed); the SQS consumers, where
  the cap is what bounds concurrency, keep theirs.
* `TimeToLiveSpecification` on DynamoDB tables  -> dynamodb:UpdateTimeToLive

The template is read with its Fn::ForEach loops expanded (infra/ops/expanded_template.py), so
every rendition worker the loop deploys is covered by its logical id.

Run through `infra/local/stack.sh run` (endpoint and dummy credentials). Never needed on AWS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
import expanded_template  # noqa: E402  (infra/ops is not a package)


def resolve(value, parameters: dict[str, str]):
    """A literal, or a `Ref` to a template parameter."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return parameters[value["Ref"]]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--parameter-overrides", nargs="*", default=[])
    args = parser.parse_args()

    try:
        template = expanded_template.load(args.template)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    for override in args.parameter_overrides:
        name, _, value = override.partition("=")
        parameters[name] = value

    cloudformation = boto3.client("cloudformation")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName=args.stack_name)["StackResources"]
    }
    lambda_client = boto3.client("lambda")
    dynamodb = boto3.client("dynamodb")
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource.get("Type")
        properties = resource.get("Properties", {})
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function") and "ReservedConcurrentExecutions" in properties:
            reserved = int(resolve(properties["ReservedConcurrentExecutions"], parameters))
            name = physical[logical_id]
            if "EventInvokeConfig" in properties:
                lambda_client.delete_function_concurrency(FunctionName=name)
                print(f"gaps: {name}: reserved concurrency {reserved} not applied (asynchronous; see above)")
            else:
                lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
                print(f"gaps: {name}: reserved concurrency {reserved}")
        if kind == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in properties:
            spec = properties["TimeToLiveSpecification"]
            table = physical[logical_id]
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": bool(spec.get("Enabled", True)), "AttributeName": spec["AttributeName"]},
            )
            print(f"gaps: {table}: TTL on {spec['AttributeName']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
