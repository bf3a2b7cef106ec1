"""infra/ops/redrive.py without a stack: what it does with each kind of dead letter, checked with
botocore's own Stubber (exact requests, canned answers). The end-to-end run is
infra/local/devstack/tests/operations.rs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

SPEC = importlib.util.spec_from_file_location("redrive", Path(__file__).resolve().parents[1] / "ops" / "redrive.py")
redrive = importlib.util.module_from_spec(SPEC)
sys.modules["redrive"] = redrive  # dataclasses look their module up there
SPEC.loader.exec_module(redrive)

DLQ = "http://sqs.local/000000000000/s-rendition-720p-dlq"
WORK = "http://sqs.local/000000000000/s-rendition-720p"
FN_DLQ = "http://sqs.local/000000000000/s-upload-publisher-dlq"


def client(service):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def receive(stub, url, messages):
    """A receive answered with `messages` (empty: the queue is drained)."""
    request = {
        "QueueUrl": url,
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 1,
        "VisibilityTimeout": redrive.HOLD_SECONDS,
        "MessageAttributeNames": ["All"],
        "AttributeNames": ["All"],
    }
    stub.add_response("receive_message", {"Messages": messages} if messages else {}, request)


def message(n, body, attributes=None):
    m = {"MessageId": f"m{n}", "ReceiptHandle": f"h{n}", "Body": body}
    if attributes:
        m["MessageAttributes"] = attributes
    return m


def text(value):
    return {"DataType": "String", "StringValue": value}


def test_work_dead_letters_go_back_and_rejected_ones_stay_unless_included():
    sqs = client("sqs")
    queue = redrive.DeadLetterQueue("Rendition720DeadLetterQueue", DLQ, "arn:dlq", source_queue_urls=[WORK])
    with Stubber(sqs) as stub:
        receive(stub, DLQ, [
            message(1, '{"key":"a.mp4"}', {"trace": text("t1")}),
            message(2, "garbage", {"rejection_code": text("MALFORMED_MESSAGE"), "rejection_reason": text("x")}),
        ])
        stub.add_response("send_message", {"MessageId": "n1"},
                          {"QueueUrl": WORK, "MessageBody": '{"key":"a.mp4"}', "MessageAttributes": {"trace": text("t1")}})
        stub.add_response("delete_message", {}, {"QueueUrl": DLQ, "ReceiptHandle": "h1"})
        receive(stub, DLQ, [])
        stub.add_response("change_message_visibility", {}, {"QueueUrl": DLQ, "ReceiptHandle": "h2", "VisibilityTimeout": 0})
        counts = redrive.redrive(queue, sqs, None, include_rejected=False)
        stub.assert_no_pending_responses()
    assert (counts.moved, counts.skipped, counts.failed) == (1, 1, 0)
    assert counts.reasons == {"rejected MALFORMED_MESSAGE": 1}

    with Stubber(sqs) as stub:
        receive(stub, DLQ, [message(2, "garbage", {"rejection_code": text("MALFORMED_MESSAGE")})])
        # Sent back without the attributes the function added when it parked it.
        stub.add_response("send_message", {"MessageId": "n2"}, {"QueueUrl": WORK, "MessageBody": "garbage"})
        stub.add_response("delete_message", {}, {"QueueUrl": DLQ, "ReceiptHandle": "h2"})
        receive(stub, DLQ, [])
        counts = redrive.redrive(queue, sqs, None, include_rejected=True)
    assert (counts.moved, counts.skipped) == (1, 0)


def test_a_failed_send_keeps_the_dead_letter():
    sqs = client("sqs")
    queue = redrive.DeadLetterQueue("Rendition720DeadLetterQueue", DLQ, "arn:dlq", source_queue_urls=[WORK])
    with Stubber(sqs) as stub:
        receive(stub, DLQ, [message(1, "{}")])
        stub.add_client_error("send_message", "AWS.SimpleQueueService.NonExistentQueue")
        receive(stub, DLQ, [])
        stub.add_response("change_message_visibility", {}, {"QueueUrl": DLQ, "ReceiptHandle": "h1", "VisibilityTimeout": 0})
        counts = redrive.redrive(queue, sqs, None, include_rejected=False)
        stub.assert_no_pending_responses()
    assert (counts.moved, counts.failed) == (0, 1)


def record(function_arn, payload):
    return json.dumps({"version": "1.0", "requestContext": {"functionArn": function_arn}, "requestPayload": payload})


def test_invocation_records_reinvoke_their_function_with_the_original_event():
    sqs, lam = client("sqs"), client("lambda")
    queue = redrive.DeadLetterQueue("UploadPublisherDeadLetterQueue", FN_DLQ, "arn:fdlq", function_name="s-upload-publisher")
    event = {"Records": [{"s3": {"object": {"key": "uploads/a.mp4"}}}]}
    with Stubber(sqs) as sqs_stub, Stubber(lam) as lambda_stub:
        receive(sqs_stub, FN_DLQ, [
            message(1, record("arn:aws:lambda:us-east-1:1:function:s-upload-publisher:$LATEST", event)),
            message(2, record("arn:aws:lambda:us-east-1:1:function:someone-else", event)),
            message(3, "not json"),
        ])
        lambda_stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {"FunctionName": "s-upload-publisher", "InvocationType": "Event", "Payload": ANY, "Qualifier": "$LATEST"},
        )
        sqs_stub.add_response("delete_message", {}, {"QueueUrl": FN_DLQ, "ReceiptHandle": "h1"})
        receive(sqs_stub, FN_DLQ, [])
        for handle in ("h2", "h3"):
            sqs_stub.add_response("change_message_visibility", {}, {"QueueUrl": FN_DLQ, "ReceiptHandle": handle, "VisibilityTimeout": 0})
        counts = redrive.redrive(queue, sqs, lam, include_rejected=False)
        sqs_stub.assert_no_pending_responses()
        lambda_stub.assert_no_pending_responses()
    assert (counts.moved, counts.skipped, counts.failed) == (1, 2, 0)
    assert counts.reasons == {"record of another function": 1, "not an invocation record": 1}


@pytest.mark.parametrize("wanted", ["Rendition720DeadLetterQueue", "s-rendition-720p-dlq", DLQ])
def test_a_queue_is_named_by_logical_id_name_or_url(wanted):
    queue = redrive.DeadLetterQueue("Rendition720DeadLetterQueue", DLQ, "arn:dlq", source_queue_urls=[WORK])
    assert redrive.pick([queue], wanted) is queue
