"""Moves dead letters of a deployed stack back to work, after the fault that stranded them is fixed.

    redrive.py --stack-name NAME                  list the stack's dead-letter queues and depths
    redrive.py --stack-name NAME QUEUE            redrive one (its name, logical id or URL)
    redrive.py --stack-name NAME QUEUE --include-rejected

The stack has two kinds of dead-letter queue, found from the deployed stack itself (never from
a list kept here, so a new queue or function is covered when it is deployed):

* the redrive DLQ of a work queue (a queue whose RedrivePolicy targets it): each message is sent
  back to that work queue, body and attributes as they were.
  Messages our functions parked there on purpose carry a `rejection_code` attribute (malformed,
  not the contract): sent back, they would only be rejected and parked again, so they are left in
  place and counted as skipped unless `--include-rejected` (after a fix that now accepts them);
  then they go back without the rejection_* attributes.
* the OnFailure destination of a function's asynchronous invocations: each message is Lambda's
  invocation record, whose `requestPayload` is the original event; the function is invoked again,
  asynchronously, with that payload. Records of another function are left in place.

A dead letter is deleted only after its copy was accepted (SendMessage answered, or Invoke
answered 202): a failure leaves it in the queue, so nothing is lost; a crash between the two
steps can at worst duplicate one message, which every consumer of this stack tolerates
(idempotent outputs). Skipped messages are held invisible during the run, so each is looked at
once, and made visible again at the end.

SQS's own redrive (StartMessageMoveTask) moves a work DLQ back whole; it cannot leave the
rejected messages in place or strip their rejection attributes, and it does not apply to
on-failure records, which need a re-invoke.

Prints one line per queue: moved / skipped / failed, and the depth left. Exits 1 if any failed.
Credentials and region come from the environment (AWS_PROFILE, AWS_REGION, ...); under
`infra/local/stack.sh run` that is the local stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field

import boto3

# How long a message stays invisible to others while this run holds it. Long enough for one
# send/invoke and delete; a crashed run gives its messages back after this.
HOLD_SECONDS = 60
# Attributes a function adds when it parks a message; a redriven message leaves them behind.
REJECTION_ATTRIBUTES = ("rejection_code", "rejection_reason", "original_message_id")


@dataclass
class DeadLetterQueue:
    logical_id: str
    url: str
    arn: str
    # Exactly one of these: the work queue it is the redrive DLQ of, or the function it is the
    # on-failure destination of.
    source_queue_urls: list[str] = field(default_factory=list)
    function_name: str | None = None

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def kind(self) -> str:
        return "on-failure" if self.function_name else "redrive"

    def feeds(self) -> str:
        if self.function_name:
            return f"function {self.function_name}"
        return "queue " + ", ".join(u.rsplit("/", 1)[-1] for u in self.source_queue_urls)


@dataclass
class Counts:
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def stack_resources(cloudformation, stack_name: str) -> list[dict]:
    # ListStackResources pages; DescribeStackResources stops at 100 resources.
    paginator = cloudformation.get_paginator("list_stack_resources")
    return [r for page in paginator.paginate(StackName=stack_name) for r in page["StackResourceSummaries"]]


def dead_letter_queues(stack_name: str, sqs, lambda_client, cloudformation) -> list[DeadLetterQueue]:
    resources = stack_resources(cloudformation, stack_name)
    queues = {}  # arn -> (logical id, url, attributes)
    for resource in resources:
        if resource["ResourceType"] == "AWS::SQS::Queue":
            url = resource["PhysicalResourceId"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"])["Attributes"]
            queues[attributes["QueueArn"]] = (resource["LogicalResourceId"], url, attributes)
    found: dict[str, DeadLetterQueue] = {}

    def dlq(arn: str) -> DeadLetterQueue:
        logical_id, url, _ = queues[arn]
        return found.setdefault(arn, DeadLetterQueue(logical_id, url, arn))

    for _, url, attributes in queues.values():
        if "RedrivePolicy" in attributes:
            target = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
            if target in queues:
                dlq(target).source_queue_urls.append(url)
    for resource in resources:
        if resource["ResourceType"] != "AWS::Lambda::Function":
            continue
        function_name = resource["PhysicalResourceId"]
        configs = lambda_client.list_function_event_invoke_configs(FunctionName=function_name)
        for config in configs.get("FunctionEventInvokeConfigs", []):
            destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if destination in queues:
                dlq(destination).function_name = function_name
    return sorted(found.values(), key=lambda q: q.logical_id)


def depth(sqs, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def pick(queues: list[DeadLetterQueue], wanted: str) -> DeadLetterQueue:
    for queue in queues:
        if wanted in (queue.logical_id, queue.name, queue.url, queue.arn):
            return queue
    names = ", ".join(f"{q.name} ({q.logical_id})" for q in queues)
    raise SystemExit(f"redrive: {wanted!r} is not a dead-letter queue of this stack; it has: {names}")


def held_messages(sqs, url: str):
    """Each message of the queue once: received, and invisible to others while this run holds it."""
    while True:
        received = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=HOLD_SECONDS,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return
        yield from received


def send_back(sqs, queue: DeadLetterQueue, message: dict, include_rejected: bool, counts: Counts) -> bool:
    """True when the message was accepted by its work queue (and may be deleted here)."""
    attributes = message.get("MessageAttributes", {})
    if "rejection_code" in attributes and not include_rejected:
        counts.skip(f"rejected {attributes['rejection_code'].get('StringValue', '')}".strip())
        return False
    if len(queue.source_queue_urls) != 1:
        counts.skip("several source queues")
        return False
    kept = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in attributes.items()
        if name not in REJECTION_ATTRIBUTES
    }
    request = {"QueueUrl": queue.source_queue_urls[0], "MessageBody": message["Body"]}
    if kept:
        request["MessageAttributes"] = kept
    sqs.send_message(**request)
    return True


def reinvoke(lambda_client, queue: DeadLetterQueue, message: dict, counts: Counts) -> bool:
    """True when Lambda accepted the asynchronous invocation (and the record may be deleted)."""
    try:
        record = json.loads(message["Body"])
        function_arn = record["requestContext"]["functionArn"]
        payload = record["requestPayload"]
    except (ValueError, KeyError, TypeError):
        counts.skip("not an invocation record")
        return False
    # arn:aws:lambda:region:account:function:NAME[:qualifier]
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[6] != queue.function_name:
        counts.skip("record of another function")
        return False
    request = {"FunctionName": queue.function_name, "InvocationType": "Event", "Payload": json.dumps(payload).encode()}
    if len(parts) > 7:
        request["Qualifier"] = parts[7]
    answer = lambda_client.invoke(**request)
    if answer["StatusCode"] != 202:
        raise RuntimeError(f"Invoke answered {answer['StatusCode']}")
    return True


def redrive(queue: DeadLetterQueue, sqs, lambda_client, include_rejected: bool) -> Counts:
    counts = Counts()
    held_back = []
    for message in held_messages(sqs, queue.url):
        try:
            if queue.function_name:
                accepted = reinvoke(lambda_client, queue, message, counts)
            else:
                accepted = send_back(sqs, queue, message, include_rejected, counts)
        except Exception as error:  # noqa: BLE001 - any failure leaves the message, counted and named
            counts.failed += 1
            print(f"redrive: {message['MessageId']} stays in {queue.name}: {error}", file=sys.stderr)
            accepted = False
        if accepted:
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
            counts.moved += 1
        else:
            held_back.append(message["ReceiptHandle"])
    # Give back what stays, at once, rather than after HOLD_SECONDS.
    for handle in held_back:
        sqs.change_message_visibility(QueueUrl=queue.url, ReceiptHandle=handle, VisibilityTimeout=0)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("queue", nargs="?", help="a dead-letter queue: its name, logical id or URL")
    parser.add_argument(
        "--include-rejected",
        action="store_true",
        help="also send back messages the functions parked with a rejection_code (after a fix that accepts them)",
    )
    args = parser.parse_args()

    sqs = boto3.client("sqs")
    lambda_client = boto3.client("lambda")
    queues = dead_letter_queues(args.stack_name, sqs, lambda_client, boto3.client("cloudformation"))
    if not args.queue:
        print(f"dead-letter queues of stack {args.stack_name}:")
        total = 0
        for queue in queues:
            visible, in_flight = depth(sqs, queue.url)
            total += visible
            print(
                f"  {queue.name:<44} {queue.logical_id:<40} {queue.kind:<10} -> {queue.feeds():<40} "
                f"depth {visible} (in flight {in_flight})"
            )
        print(f"{len(queues)} dead-letter queues, {total} messages")
        return 0

    queue = pick(queues, args.queue)
    counts = redrive(queue, sqs, lambda_client, args.include_rejected)
    visible, in_flight = depth(sqs, queue.url)
    reasons = "".join(f"; {n} {reason}" for reason, n in sorted(counts.reasons.items()))
    # "moved" for both kinds: a record is moved back into its function (re-invoked).
    print(
        f"redrive {queue.name} ({queue.kind} -> {queue.feeds()}): moved {counts.moved}, "
        f"skipped {counts.skipped}{reasons}, failed {counts.failed}; depth now {visible} (in flight {in_flight})"
    )
    return 1 if counts.failed else 0


if __name__ == "__main__":
    sys.exit(main())
