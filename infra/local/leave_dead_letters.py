"""Leaves one dead letter "of an earlier run" in every dead-letter queue of a local stack.

    leave_dead_letters.py --stack-name NAME

`make test` runs it on its own fresh stack before the end-to-end tests, so that they run as they
would on a long-lived stack (after `make demo`, after a message that ended in a DLQ): every test
must judge only what it created, and a test that counts a whole queue fails here instead of on a
user's machine. The queues are found from the deployed stack as `make redrive` finds them
(infra/ops/redrive.py), so a new DLQ gets its dead letter without a change here.

What is left looks like what the stack itself leaves: in a work queue's DLQ, a message that is not
the contract (a redrive sends it back and the worker parks it again, by name); in a function's
on-failure DLQ, Lambda's invocation record of an event the function refuses by name.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
from redrive import dead_letter_queues  # noqa: E402  (the ops tool is not a package)

MARK = "an-earlier-run"


def dead_letter(queue) -> str:
    if queue.function_name:
        return json.dumps(
            {
                "version": "1.0",
                "timestamp": "2026-01-01T00:00:00.000Z",
                "requestContext": {
                    "requestId": MARK,
                    "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{queue.function_name}",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": 3,
                },
                "requestPayload": {"left_by": MARK},
                "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
                "responsePayload": {"errorType": "Unhandled", "errorMessage": f"left by {MARK}"},
            }
        )
    return json.dumps({"left_by": MARK})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", required=True)
    args = parser.parse_args()
    sqs = boto3.client("sqs")
    queues = dead_letter_queues(args.stack_name, sqs, boto3.client("lambda"), boto3.client("cloudformation"))
    if not queues:
        print(f"{args.stack_name}: no dead-letter queue found", file=sys.stderr)
        return 1
    for queue in queues:
        sqs.send_message(QueueUrl=queue.url, MessageBody=dead_letter(queue))
    print(f"left a dead letter of an earlier run in each of {len(queues)} dead-letter queues")
    return 0


if __name__ == "__main__":
    sys.exit(main())
