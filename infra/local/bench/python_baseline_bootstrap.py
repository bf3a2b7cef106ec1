"""Baseline for the cold-init benchmark: a Python 3 + boto3 Lambda bootstrap doing the same
cold-start work as our Rust functions (read the configuration, create the same SDK clients),
then asking the Runtime API for its first invocation, exactly as the Rust binaries do.

usage: python_baseline_bootstrap.py publisher|worker
"""

import os
import sys
import urllib.request

import boto3

role = sys.argv[1]
if role == "publisher":
    config = {name: os.environ[name] for name in ("UPLOADS_TOPIC_ARN", "RESULTS_TOPIC_ARN")}
    clients = [boto3.client("sns")]
else:
    config = {name: os.environ[name] for name in ("RENDITION_PROFILE", "OUTPUT_BUCKET", "RESULTS_TOPIC_ARN", "DEAD_LETTER_QUEUE_URL")}
    clients = [boto3.client("s3"), boto3.client("sns"), boto3.client("sqs")]

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next")
