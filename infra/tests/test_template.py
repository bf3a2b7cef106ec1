"""Checks of infra/template.yaml that the local emulator cannot make (it does not enforce IAM).

Least privilege: each function has its own role whose inline policy grants exactly the
actions, on exactly the resources, that the function's code uses (the table below says where
in the code each one is used). Plus the storage and messaging guarantees the issues require.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[1]
TEMPLATE = INFRA / "template.yaml"
REPO = INFRA.parent

# The template as the stack has it: its Fn::ForEach loops written out (infra/ops/expanded_template.py).
_SPEC = importlib.util.spec_from_file_location("expanded_template", INFRA / "ops" / "expanded_template.py")
expanded_template = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(expanded_template)

# The rendition profiles (job-templates/renditions/<name>.json, compiled into the worker by
# shared/build.rs). The template deploys one worker per profile; its logical ids carry the
# profile's height: 720p -> Rendition720Function, Rendition720Queue, ...
PROFILES = sorted((REPO / "job-templates" / "renditions").glob("*.json"))
PROFILE_NAMES = [p.stem for p in PROFILES]


def height_of(profile: str) -> str:
    match = re.fullmatch(r"(\d+)p", profile)
    assert match, f"profile {profile!r}: a profile is named by its height (<height>p.json), which names its worker"
    return match.group(1)


RENDITION_WORKERS = {profile: f"Rendition{height_of(profile)}Function" for profile in PROFILE_NAMES}

LOGS = {("logs:CreateLogStream", "{fn}LogGroup"), ("logs:PutLogEvents", "{fn}LogGroup")}

# function logical id -> {(action, resource)}; resources are logical ids, with a path for S3.
EXPECTED = {
    "UploadPublisherFunction": {
        # shared::publish::publish_json: uploads (videos) and results (rejections)
        ("sns:Publish", "UploadsTopic"),
        ("sns:Publish", "ResultsTopic"),
        # Lambda's on-failure destination for events that exhausted the async retries
        ("sqs:SendMessage", "UploadPublisherDeadLetterQueue"),
    },
    **{
        f"Rendition{p}Function": {
            # the SQS event source mapping
            ("sqs:ReceiveMessage", f"Rendition{p}Queue"),
            ("sqs:DeleteMessage", f"Rendition{p}Queue"),
            ("sqs:GetQueueAttributes", f"Rendition{p}Queue"),
            ("sqs:ChangeMessageVisibility", f"Rendition{p}Queue"),
            # shared::sqs::park_in_dead_letter_queue
            ("sqs:SendMessage", f"Rendition{p}DeadLetterQueue"),
            # shared::storage::download_to_file
            ("s3:GetObject", "SourceBucket/*"),
            # shared::storage::{head_object (reuse), upload_file (put, multipart, abort)}
            ("s3:GetObject", "OutputBucket/renditions/*"),
            ("s3:PutObject", "OutputBucket/renditions/*"),
            ("s3:AbortMultipartUpload", "OutputBucket/renditions/*"),
            # results
            ("sns:Publish", "ResultsTopic"),
            # rendition_worker::Worker::start_segmented: sources too long for one invocation
            ("states:StartExecution", "SegmentedRenditionStateMachine"),
        }
        for p in (height_of(profile) for profile in PROFILE_NAMES)
    },
    "SegmentedRenditionFunction": {
        # presigned source URLs: ffmpeg's ranged GETs carry the signer's right to read
        ("s3:GetObject", "SourceBucket/*"),
        # parts: upload_file (encode), download_to_file (join), delete_scratch
        ("s3:GetObject", "OutputBucket/scratch/renditions/*"),
        ("s3:PutObject", "OutputBucket/scratch/renditions/*"),
        ("s3:AbortMultipartUpload", "OutputBucket/scratch/renditions/*"),
        ("s3:DeleteObject", "OutputBucket/scratch/renditions/*"),
        # scratch_keys (progress count, deletion), limited to scratch/renditions/ by a condition
        ("s3:ListBucket", "OutputBucket"),
        # join: the rendition at its final key
        ("s3:PutObject", "OutputBucket/renditions/*"),
        ("s3:AbortMultipartUpload", "OutputBucket/renditions/*"),
        # progress and outcomes
        ("sns:Publish", "ResultsTopic"),
        # Lambda's on-failure destination for the execution-end events
        ("sqs:SendMessage", "SegmentedRenditionDeadLetterQueue"),
        # failed_part_error: a failed Map Run's part, read from the Map Run of its execution
        ("states:ListMapRuns", "SegmentedRenditionStateMachine executions"),
        ("states:ListExecutions", "SegmentedRenditionStateMachine EncodeParts map runs"),
        ("states:DescribeExecution", "SegmentedRenditionStateMachine EncodeParts children"),
    },
    "ClipTrimmerFunction": {
        # the SQS event source mapping, plus ChangeMessageVisibility for the retry backoff
        ("sqs:ReceiveMessage", "ClipRequestsQueue"),
        ("sqs:DeleteMessage", "ClipRequestsQueue"),
        ("sqs:GetQueueAttributes", "ClipRequestsQueue"),
        ("sqs:ChangeMessageVisibility", "ClipRequestsQueue"),
        # retry-by-requeue (CLIP_PENDING, deadline hand-on)
        ("sqs:SendMessage", "ClipRequestsQueue"),
        # shared::sqs::park_in_dead_letter_queue
        ("sqs:SendMessage", "ClipRequestsDeadLetterQueue"),
        # replica.rs: ranged GETs of recordings
        ("s3:GetObject", "RecordingsBucket/*"),
        # head_object (reuse) and upload_file for clips and thumbnails
        ("s3:GetObject", "OutputBucket/clips/*"),
        ("s3:PutObject", "OutputBucket/clips/*"),
        ("s3:AbortMultipartUpload", "OutputBucket/clips/*"),
        ("sns:Publish", "ResultsTopic"),
    },
    "GifApiFunction": {
        # gif_api::Api::convert (put; delete when the job cannot be queued), get_task_status
        ("dynamodb:PutItem", "TasksTable"),
        ("dynamodb:GetItem", "TasksTable"),
        ("dynamodb:DeleteItem", "TasksTable"),
        ("sqs:SendMessage", "GifJobsQueue"),
        # presigned GIF links carry the signer's right to read them
        ("s3:GetObject", "OutputBucket/gifs/*"),
    },
    "GifConverterFunction": {
        # the SQS event source mapping
        ("sqs:ReceiveMessage", "GifJobsQueue"),
        ("sqs:DeleteMessage", "GifJobsQueue"),
        ("sqs:GetQueueAttributes", "GifJobsQueue"),
        ("sqs:ChangeMessageVisibility", "GifJobsQueue"),
        # shared::sqs::park_in_dead_letter_queue
        ("sqs:SendMessage", "GifJobsDeadLetterQueue"),
        # gif_converter::TaskStore (conditional updates; a read when a claim is refused)
        ("dynamodb:UpdateItem", "TasksTable"),
        ("dynamodb:GetItem", "TasksTable"),
        # s3:// sources: head_object + download_to_file; ListBucket makes a missing key a 404
        ("s3:GetObject", "SourceBucket/*"),
        ("s3:ListBucket", "SourceBucket"),
        # shared::storage::upload_file
        ("s3:PutObject", "OutputBucket/gifs/*"),
        ("s3:AbortMultipartUpload", "OutputBucket/gifs/*"),
    },
    "MediaConvertSubmitterFunction": {
        # mediaconvert_submitter::Submitter::submit, on the configured queue only
        ("mediaconvert:CreateJob", "MediaConvertQueue"),
        # Submitter::account_template, and CreateJob naming it and the presets its outputs name
        ("mediaconvert:GetJobTemplate", "MediaConvertJobTemplate"),
        ("mediaconvert:CreateJob", "MediaConvertJobTemplate"),
        ("mediaconvert:CreateJob", "MediaConvertPresets"),
        # Submitter::discover_endpoint (only when MEDIACONVERT_ENDPOINT is unset); no resource type
        ("mediaconvert:DescribeEndpoints", "*"),
        # CreateJob's Role: the job role, and only to MediaConvert (see the PassRole test)
        ("iam:PassRole", "MediaConvertRole"),
        # Submitter::answer: rejected objects and refused jobs
        ("sns:Publish", "ResultsTopic"),
        # Lambda's on-failure destination
        ("sqs:SendMessage", "MediaConvertSubmitterDeadLetterQueue"),
    },
    "MediaConvertResultsFunction": {
        # mediaconvert_results::Answerer::handle
        ("sns:Publish", "ResultsTopic"),
        # Lambda's on-failure destination
        ("sqs:SendMessage", "MediaConvertResultsDeadLetterQueue"),
    },
}

# shared::ledger: the claim (conditional put), the read when a claim is refused, the mark.
LEDGER = {("dynamodb:PutItem", "LedgerTable"), ("dynamodb:GetItem", "LedgerTable"), ("dynamodb:UpdateItem", "LedgerTable")}
for _function_id in (
    "UploadPublisherFunction",
    *RENDITION_WORKERS.values(),
    "ClipTrimmerFunction",
    "MediaConvertSubmitterFunction",
    "MediaConvertResultsFunction",
    "SegmentedRenditionFunction",
):
    EXPECTED[_function_id] |= LEDGER

# Actions IAM only grants on "*" (no resource type in the Service Authorization Reference).
WITHOUT_RESOURCE_TYPE = {"mediaconvert:DescribeEndpoints"}

# Buckets named by their BucketName where a Ref would close a dependency cycle (a bucket whose
# notification targets a function cannot be Ref'd by that function's role chain).
BUCKET_NAMES = {"SourceBucket": "${AWS::StackName}-source-${AWS::AccountId}"}

MEDIACONVERT_ARN = r"arn:\$\{AWS::Partition\}:mediaconvert:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
MEDIACONVERT_RESOURCES = {
    "MediaConvertQueue": MEDIACONVERT_ARN + r"queues/\$\{MediaConvertQueueName\}",
    "MediaConvertJobTemplate": MEDIACONVERT_ARN + r"jobTemplates/\$\{MediaConvertTemplate\}",
    "MediaConvertPresets": MEDIACONVERT_ARN + r"presets/\*",
}
# The segmented-rendition state machine's ARNs by its name (a Ref would close a cycle), and those
# of its executions, of its EncodeParts Map Runs and of their child executions (one per part).
STATES_ARN = r"arn:\$\{AWS::Partition\}:states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
SEGMENTED_MACHINE = r"\$\{AWS::StackName\}-segmented-rendition"
STATES_RESOURCES = {
    "SegmentedRenditionStateMachine": STATES_ARN + "stateMachine:" + SEGMENTED_MACHINE,
    "SegmentedRenditionStateMachine executions": STATES_ARN + "execution:" + SEGMENTED_MACHINE + r":\*",
    "SegmentedRenditionStateMachine EncodeParts map runs": STATES_ARN + "mapRun:" + SEGMENTED_MACHINE + r"/EncodeParts:\*",
    "SegmentedRenditionStateMachine EncodeParts children": STATES_ARN + "execution:" + SEGMENTED_MACHINE + r"/EncodeParts:\*",
}


@pytest.fixture(scope="module")
def template():
    return expanded_template.load(TEMPLATE)


def resources_of(template, kind):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def resource_name(ref) -> str:
    """!Ref X / !GetAtt X.Arn / !Sub 'arn:...:s3:::${X}/path' -> 'X' or 'X/path'."""
    if ref == "*":
        return "*"
    if isinstance(ref, dict):
        if "Ref" in ref:
            return ref["Ref"]
        if "Fn::GetAtt" in ref:
            target = ref["Fn::GetAtt"]
            target = target if isinstance(target, list) else target.split(".")
            assert target[1] == "Arn", ref
            return target[0]
        if "Fn::Sub" in ref:
            text = ref["Fn::Sub"]
            for name, pattern in (MEDIACONVERT_RESOURCES | STATES_RESOURCES).items():
                if re.fullmatch(pattern, text):
                    return name
            for bucket_id, bucket_name in BUCKET_NAMES.items():
                text = text.replace(bucket_name, "${" + bucket_id + "}")
            match = re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{(\w+)\}(/.*)?", text)
            assert match, f"unrecognised resource {text}"
            return match.group(1) + (match.group(2) or "")
    raise AssertionError(f"a resource must name a template resource, not {ref!r}")


def as_list(value):
    return value if isinstance(value, list) else [value]


def granted(template, function_id):
    function = template["Resources"][function_id]["Properties"]
    assert "Policies" not in function, f"{function_id}: policies belong on its own role"
    role_id = resource_name(function["Role"])
    role = template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, f"{role_id}: managed policies grant more than the function uses"
    grants = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{role_id}: wildcard action {action}"
                for resource in as_list(statement["Resource"]):
                    name = resource_name(resource)
                    assert name != "*" or action in WITHOUT_RESOURCE_TYPE, f"{role_id}: {action} on *"
                    grants.add((action, name))
    return grants


def test_every_function_is_covered(template):
    assert set(EXPECTED) == set(resources_of(template, "AWS::Serverless::Function"))


def literal(value):
    """A value the transform left as `Fn::Sub` of a constant, as that constant."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        assert "${" not in value["Fn::Sub"], value
        return value["Fn::Sub"]
    return value


def rendition_workers_in(template):
    """{RENDITION_PROFILE -> logical id} of the functions built from functions/rendition-worker."""
    workers = {}
    for function_id, function in resources_of(template, "AWS::Serverless::Function").items():
        properties = function["Properties"]
        if Path(properties["CodeUri"]).name == "rendition-worker":
            profile = literal(properties["Environment"]["Variables"]["RENDITION_PROFILE"])
            assert profile not in workers, f"{workers[profile]} and {function_id} both render {profile}"
            workers[profile] = function_id
    return workers


def test_every_rendition_profile_has_a_worker_and_every_worker_a_profile(template):
    workers = rendition_workers_in(template)
    unserved = sorted(set(PROFILE_NAMES) - set(workers))
    assert not unserved, f"profiles without a worker (add their heights to RenditionWorkers in infra/template.yaml): {unserved}"
    unknown = sorted(set(workers) - set(PROFILE_NAMES))
    assert not unknown, f"workers whose profile has no file in job-templates/renditions/: {unknown}"
    assert workers == RENDITION_WORKERS
    for path in PROFILES:
        assert json.loads(path.read_text())["name"] == path.stem, f"{path.name}: a profile's name is its file's"
    print(f"{len(PROFILES)} rendition profiles, {len(workers)} rendition workers")


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_each_rendition_worker_is_fed_by_the_uploads_topic_and_reported_in_the_outputs(template, profile):
    resources = template["Resources"]
    height = height_of(profile)
    queue_id, dead_letter_id = f"Rendition{height}Queue", f"Rendition{height}DeadLetterQueue"
    function = resources[RENDITION_WORKERS[profile]]["Properties"]
    # consumed: the worker's one trigger is its queue, whose dead letters rest in its own DLQ
    (event,) = function["Events"].values()
    assert (event["Type"], resource_name(event["Properties"]["Queue"])) == ("SQS", queue_id)
    assert resource_name(resources[queue_id]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]) == dead_letter_id
    variables = function["Environment"]["Variables"]
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": dead_letter_id}
    # published: to the results topic (the least-privilege table above holds the grants)
    assert variables["RESULTS_TOPIC_ARN"] == {"Ref": "ResultsTopic"}
    # fed: the queue is subscribed to the uploads topic, and its policy lets that topic deliver
    subscriptions = [
        s["Properties"]
        for s in resources_of(template, "AWS::SNS::Subscription").values()
        if resource_name(s["Properties"]["Endpoint"]) == queue_id
    ]
    assert [(s["TopicArn"], s["Protocol"]) for s in subscriptions] == [({"Ref": "UploadsTopic"}, "sqs")]
    policies = [
        p["Properties"]["PolicyDocument"]
        for p in resources_of(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    assert len(policies) == 1, f"{queue_id}: one queue policy (a second would overwrite the first)"
    (statement,) = policies[0]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Allow",
        {"Service": "sns.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert resource_name(statement["Resource"]) == queue_id
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "UploadsTopic"}}}
    # what the end-to-end tests and redrive find the worker by
    for output in (f"Rendition{height}QueueUrl", f"Rendition{height}DeadLetterQueueUrl", f"Rendition{height}FunctionName"):
        assert output in template["Outputs"], output


def find_in_map(template, arguments):
    """Fn::FindInMap with AWS::LanguageExtensions' DefaultValue, on the template's Mappings."""
    default = arguments[3]["DefaultValue"] if len(arguments) == 4 else None
    top, second, third = arguments[:3]
    value = template.get("Mappings", {}).get(top, {}).get(second, {}).get(third, default)
    assert value is not None, f"Fn::FindInMap {arguments}: no such entry"
    return value


def test_rendition_queues_take_raw_messages_except_1080p_which_takes_the_sns_envelope(template):
    """The worker accepts both forms; the end-to-end tests send through both."""
    raw = {}
    for profile in PROFILE_NAMES:
        queue_id = f"Rendition{height_of(profile)}Queue"
        (subscription,) = [
            s["Properties"]
            for s in resources_of(template, "AWS::SNS::Subscription").values()
            if resource_name(s["Properties"]["Endpoint"]) == queue_id
        ]
        value = subscription["RawMessageDelivery"]
        raw[profile] = find_in_map(template, value["Fn::FindInMap"]) if isinstance(value, dict) else value
    assert raw == {profile: profile != "1080p" for profile in PROFILE_NAMES}


def test_the_description_names_every_function(template):
    crates = sorted(p.parent.name for p in (REPO / "functions").glob("*/Cargo.toml"))
    deployed = {Path(f["Properties"]["CodeUri"]).name for f in resources_of(template, "AWS::Serverless::Function").values()}
    assert deployed == set(crates), "every crate under functions/ is deployed by the template"
    unnamed = [crate for crate in crates if crate not in template["Description"]]
    assert not unnamed, f"the template's Description does not name {unnamed}"
    assert len(template["Description"]) <= 1024, "CloudFormation's limit"


@pytest.mark.parametrize("function_id", sorted(EXPECTED))
def test_each_function_policy_grants_only_what_it_uses(template, function_id):
    stem = function_id.removesuffix("Function")
    expected = EXPECTED[function_id] | {(a, r.format(fn=stem)) for a, r in LOGS}
    assert granted(template, function_id) == expected


def test_roles_are_not_shared(template):
    roles = [resource_name(f["Properties"]["Role"]) for f in resources_of(template, "AWS::Serverless::Function").values()]
    assert len(roles) == len(set(roles))


@pytest.mark.parametrize("bucket_id", ["SourceBucket", "OutputBucket", "RecordingsBucket"])
def test_buckets_are_private_encrypted_and_tls_only(template, bucket_id):
    bucket = template["Resources"][bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    policies = [p for p in resources_of(template, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    assert len(policies) == 1
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    ), "TLS-only deny statement"


def test_every_work_queue_has_a_dead_letter_queue_and_reports_item_failures(template):
    queues = resources_of(template, "AWS::SQS::Queue")
    work_queues = {k for k in queues if not k.endswith("DeadLetterQueue")}
    for queue_id in work_queues:
        redrive = queues[queue_id]["Properties"]["RedrivePolicy"]
        assert resource_name(redrive["deadLetterTargetArn"]).endswith("DeadLetterQueue")
    consumed = set()
    for function in resources_of(template, "AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
                consumed.add(resource_name(event["Properties"]["Queue"]))
    assert consumed == work_queues


def test_functions_are_rust_on_al2023_built_in_one_workspace_build(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Handler"] == "bootstrap"
    assert globals_["Architectures"] == [{"Ref": "Architecture"}]
    for function_id, function in resources_of(template, "AWS::Serverless::Function").items():
        metadata = function["Metadata"]
        assert (metadata["BuildMethod"], metadata["ContextPath"], metadata["WorkingDirectory"]) == (
            "makefile", "build", ".."), function_id
        assert (TEMPLATE.parent / function["Properties"]["CodeUri"] / "Cargo.toml").exists(), function_id


def crate_built_for(logical_id: str) -> str:
    """The crate infra/build/Makefile builds for a resource (make -n prints the copy it would do)."""
    done = subprocess.run(["make", "-n", "-s", "-f", str(INFRA / "build" / "Makefile"), f"build-{logical_id}",
                           "ARTIFACTS_DIR=/nowhere"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, f"build-{logical_id}: {done.stderr}"
    copied = re.search(r"cp target/lambda-arm64/([a-z-]+)/bootstrap /nowhere/bootstrap", done.stdout)
    assert copied, f"build-{logical_id} copies no bootstrap: {done.stdout}"
    return copied.group(1)


def test_the_build_makefile_builds_each_function_from_its_own_crate(template):
    for function_id, function in resources_of(template, "AWS::Serverless::Function").items():
        crate = Path(function["Properties"]["CodeUri"]).name
        assert crate_built_for(function_id) == crate, function_id


def test_the_stack_builds_and_attaches_its_ffmpeg_layer_unless_given_one(template):
    parameters = template["Parameters"]
    assert parameters["Architecture"]["Default"] == "arm64"
    assert parameters["Architecture"]["AllowedValues"] == ["arm64", "x86_64"]
    assert parameters["FfmpegLayerArn"]["Default"] == ""
    layer = template["Resources"]["FfmpegLayer"]
    assert layer["Condition"] == "BuildsFfmpegLayer"
    operands = template["Conditions"]["BuildsFfmpegLayer"]["Fn::Equals"]
    assert sorted(map(json.dumps, operands)) == sorted(map(json.dumps, [{"Ref": "FfmpegLayerArn"}, ""]))
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert (TEMPLATE.parent / layer["Properties"]["ContentUri"] / "packages.json").exists()
    chosen = [{"Fn::If": ["HasFfmpegLayer", {"Ref": "FfmpegLayerArn"}, {"Ref": "FfmpegLayer"}]}]
    users = {fid for fid, f in resources_of(template, "AWS::Serverless::Function").items()
             if "FFMPEG_PATH" in f["Properties"].get("Environment", {}).get("Variables", {})}
    assert users, "no function runs ffmpeg?"
    for function_id, function in resources_of(template, "AWS::Serverless::Function").items():
        if function_id in users:
            assert function["Properties"]["Layers"] == chosen, function_id
        else:
            assert "Layers" not in function["Properties"], f"{function_id} does not run ffmpeg"


def test_the_tasks_table_is_on_demand_expiring_encrypted_and_recoverable(template):
    table = template["Resources"]["TasksTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "task_id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_gif_api_url_requires_iam_and_loopback_sources_are_off_by_default(template):
    function = template["Resources"]["GifApiFunction"]["Properties"]
    assert function["FunctionUrlConfig"]["AuthType"] == "AWS_IAM"
    assert template["Parameters"]["GifSourceLoopbackAllowList"]["Default"] == ""
    for function_id in ("GifApiFunction", "GifConverterFunction"):
        variables = template["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        assert variables["SOURCE_LOOPBACK_ALLOW_LIST"] == {"Ref": "GifSourceLoopbackAllowList"}


def statements_of(role):
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_buckets_named_by_name_are_those_buckets(template):
    for bucket_id, name in BUCKET_NAMES.items():
        assert template["Resources"][bucket_id]["Properties"]["BucketName"] == {"Fn::Sub": name}


def test_the_job_role_is_passed_to_mediaconvert_only(template):
    role = template["Resources"]["MediaConvertSubmitterRole"]
    passes = [s for s in statements_of(role) if s["Action"] == "iam:PassRole"]
    assert len(passes) == 1
    assert passes[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "mediaconvert.amazonaws.com"}}


def test_mediaconvert_jobs_read_their_uploads_and_write_mediaconvert_outputs_only(template):
    role = template["Resources"]["MediaConvertRole"]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [t["Principal"] for t in trust] == [{"Service": "mediaconvert.amazonaws.com"}]
    grants = {
        (s["Action"], resource_name(s["Resource"])) for s in statements_of(role)
    }
    assert grants == {
        ("s3:GetObject", "SourceBucket/${MediaConvertUploadsPrefix}*"),
        ("s3:PutObject", "OutputBucket/mediaconvert/*"),
    }


def test_source_bucket_notifications_do_not_overlap(template):
    """S3 refuses two configurations for the same event type on overlapping key prefixes."""
    parameters = template["Parameters"]
    prefixes = []
    for function in resources_of(template, "AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "S3" and event["Properties"]["Bucket"] == {"Ref": "SourceBucket"}:
                rules = event["Properties"]["Filter"]["S3Key"]["Rules"]
                (prefix,) = [r["Value"] for r in rules if r["Name"] == "prefix"]
                prefixes.append(parameters[prefix["Ref"]]["Default"])
    assert len(prefixes) == 2
    for a in prefixes:
        for b in prefixes:
            assert a is b or not (a.startswith(b) or b.startswith(a)), prefixes


def test_outputs_are_served_by_cloudfront_only_over_https(template):
    resources = template["Resources"]
    config = resources["OutputDistribution"]["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["OutputBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OutputOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["CachePolicyId"] == {"Ref": "VideoCachePolicy"}
    oac = resources["OutputOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    cache = resources["VideoCachePolicy"]["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    assert not cache["EnableAcceptEncodingGzip"] and not cache["EnableAcceptEncodingBrotli"]
    (policy,) = [p for p in resources_of(template, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": "OutputBucket"}]
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1, "the distribution is the only reader the bucket policy admits"
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source_arn = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source_arn.endswith(":distribution/${OutputDistribution}")
    assert "DistributionDomainName" in template["Outputs"]


def test_mediaconvert_end_states_of_this_stack_reach_the_results_function(template):
    events = template["Resources"]["MediaConvertResultsFunction"]["Properties"]["Events"]
    (rule,) = events.values()
    assert rule["Type"] == "EventBridgeRule"
    pattern = rule["Properties"]["Pattern"]
    assert pattern["source"] == [{"Ref": "MediaConvertEventSource"}]
    assert template["Parameters"]["MediaConvertEventSource"]["Default"] == "aws.mediaconvert"
    assert pattern["detail-type"] == ["MediaConvert Job State Change"]
    assert pattern["detail"]["status"] == ["COMPLETE", "ERROR", "CANCELED"]
    assert pattern["detail"]["userMetadata"] == {"pipeline": [{"Ref": "AWS::StackName"}]}


def dead_letter_queues(template):
    """Every queue that holds dead letters: the target of a work queue's RedrivePolicy, or a
    function's OnFailure destination (asynchronous invocations)."""
    found = set()
    for queue in resources_of(template, "AWS::SQS::Queue").values():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            found.add(resource_name(redrive["deadLetterTargetArn"]))
    for function in resources_of(template, "AWS::Serverless::Function").values():
        on_failure = function["Properties"].get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")
        if on_failure:
            assert on_failure["Type"] == "SQS"
            found.add(resource_name(on_failure["Destination"]))
    return found


def alarms_on(template, namespace, metric):
    """{dimension value (Ref / GetAtt target) -> alarm} for the alarms on namespace/metric."""
    alarms = {}
    for alarm_id, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        if (properties["Namespace"], properties["MetricName"]) != (namespace, metric):
            continue
        (dimension,) = properties["Dimensions"]
        value = dimension["Value"]
        target = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
        alarms[target] = (alarm_id, dimension["Name"], value, properties)
    return alarms


def assert_alarms_on_any(properties):
    assert properties["Threshold"] == 0 and properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["EvaluationPeriods"] == 1
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_dead_letter_queues_are_the_queues_named_so(template):
    named = {k for k in resources_of(template, "AWS::SQS::Queue") if k.endswith("DeadLetterQueue")}
    assert dead_letter_queues(template) == named
    # upload publisher, MediaConvert submitter and results, GIF jobs, clip requests, segmented
    # rendition ends; one per worker
    assert len(named) == 6 + len(RENDITION_WORKERS), named


def test_every_dead_letter_queue_alarms_when_not_empty(template):
    alarms = alarms_on(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    queues = dead_letter_queues(template)
    missing = queues - set(alarms)
    assert not missing, f"dead-letter queues without an alarm: {sorted(missing)}"
    for queue_id in queues:
        _, name, value, properties = alarms[queue_id]
        assert (name, value) == ("QueueName", {"Fn::GetAtt": [queue_id, "QueueName"]})
        assert properties["Statistic"] == "Maximum"
        assert_alarms_on_any(properties)
    print(f"{len(queues)} dead-letter queues, {len(queues)} with a not-empty alarm")


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_alarms_on_errors_and_throttles(template, metric):
    alarms = alarms_on(template, "AWS/Lambda", metric)
    functions = set(resources_of(template, "AWS::Serverless::Function"))
    missing = functions - set(alarms)
    assert not missing, f"functions without an {metric} alarm: {sorted(missing)}"
    for function_id in functions:
        _, name, value, properties = alarms[function_id]
        assert (name, value) == ("FunctionName", {"Ref": function_id})
        assert properties["Statistic"] == "Sum"
        assert_alarms_on_any(properties)
    print(f"{len(functions)} functions, {len(functions)} with a {metric} alarm")


def test_alarms_reach_one_topic_with_an_optional_email(template):
    resources = template["Resources"]
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    # The alarm topic is read by people, never granted to a function.
    for role in resources_of(template, "AWS::IAM::Role").values():
        assert "AlarmTopic" not in str(role), "no function publishes to or reads the alarm topic"


def scanner_skips(template, key):
    """(resource, id, comment) of every skip the scanner `key` reads from resource Metadata."""
    for resource_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get(key, {}).get("skip", []):
            yield resource_id, skip.get("id"), skip.get("comment")


def test_every_checkov_skip_says_why_in_one_line(template):
    skips = list(scanner_skips(template, "checkov"))
    assert skips, "the template's checkov skips are read from resource Metadata"
    for resource_id, check_id, comment in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", check_id or ""), (resource_id, check_id)
        assert isinstance(comment, str) and comment.strip(), f"{resource_id}: {check_id} skipped without a reason"
        assert "\n" not in comment.strip(), f"{resource_id}: {check_id}: the reason is one line"
    print(f"{len(skips)} checkov skips, each with a one-line reason")


def test_cfn_lint_ignores_say_why(template):
    """cfn-lint ignores, if any, live in the template's Metadata beside a one-line reason."""
    ignores = []
    for resource_id, resource in template["Resources"].items():
        config = resource.get("Metadata", {}).get("cfn-lint", {}).get("config", {})
        for rule in config.get("ignore_checks", []):
            reasons = resource["Metadata"]["cfn-lint"].get("reasons", {})
            assert str(reasons.get(rule, "")).strip(), f"{resource_id}: cfn-lint {rule} ignored without a reason"
            ignores.append((resource_id, rule))
    assert "cfn-lint" not in template.get("Metadata", {}), "no template-wide cfn-lint ignores"
    print(f"{len(ignores)} cfn-lint ignores")


def segmented_rendition_definition(template):
    """The state machine's ASL, its Fn::Sub variables filled in (parameters by placeholder values)."""
    properties = template["Resources"]["SegmentedRenditionStateMachine"]["Properties"]
    text, variables = properties["DefinitionString"]["Fn::Sub"]
    values = {
        "AWS::Partition": "aws",
        "TasksFunctionArn": "TASKS",
        "SegmentMaxConcurrency": "40",
        "SegmentedExecutionTimeoutSeconds": "7200",
    }
    values |= {name: value for name, value in variables.items() if isinstance(value, str)}
    assert resource_name(variables["TasksFunctionArn"]) == "SegmentedRenditionFunction"
    return json.loads(re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: values[m.group(1)], text))


def test_every_way_a_segmented_rendition_can_fail_is_answered(template):
    definition = segmented_rendition_definition(template)
    states = definition["States"]
    work = {"Plan": states["Plan"], "EncodeParts": states["EncodeParts"], "Join": states["Join"]}
    for name, state in work.items():
        # every failure of plan, parts and join ends in the state that publishes it
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "AnswerFailure"}], name
    answer = states["AnswerFailure"]
    assert answer["Parameters"]["Payload"]["task"] == "answerFailure"
    # A Distributed Map: a failed part fails the Map Run, whose part answerFailure reads from the
    # execution (segmented_rendition::SegmentTasks::failed_part_error).
    assert states["EncodeParts"]["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert states["EncodeParts"]["Label"] == "EncodeParts", "the Map Run's name in the function's policy"
    assert answer["Parameters"]["Payload"]["executionArn.$"] == "$$.Execution.Id"
    assert answer["Next"] == "RenditionFailed" and states["RenditionFailed"]["Type"] == "Fail"
    tasks = [states["Plan"], states["EncodeParts"]["ItemProcessor"]["States"]["EncodePart"], states["Join"]]
    for task in tasks:
        assert task["Parameters"]["FunctionName"] == "TASKS"
        permanent, faults = task["Retry"]
        # a task's permanent answer is never retried; faults are, with backoff
        assert permanent == {"ErrorEquals": ["rejected", "failed"], "MaxAttempts": 0}
        assert faults["ErrorEquals"] == ["States.ALL"] and faults["MaxAttempts"] >= 2 and faults["BackoffRate"] > 1
    assert states["EncodeParts"]["MaxConcurrency"] == 40, "MaxConcurrency is a number (the SegmentMaxConcurrency parameter)"
    parameter = template["Parameters"]["SegmentMaxConcurrency"]
    assert parameter["Default"] == 100 and parameter["MaxValue"] > 40, "more than an inline Map's 40"
    assert definition["TimeoutSeconds"] == 7200, "the execution has a time limit (a number)"
    # The Fail state's error is how the function tells an answered failure from one that is not
    # (segmented_rendition::failure_from_execution_end, shared::contracts::segmented::ANSWERED_FAILURE).
    assert states["RenditionFailed"]["Error"] == "SegmentedRenditionFailed"


def test_executions_that_end_without_answering_are_answered_from_their_status_event(template):
    resources = template["Resources"]
    rule = resources["SegmentedRenditionEndedRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    # every end that is not a success, of this state machine only
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": "SegmentedRenditionStateMachine"}]
    (target,) = rule["Targets"]
    assert resource_name(target["Arn"]) == "SegmentedRenditionFunction"
    permission = resources["SegmentedRenditionEndedPermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert resource_name(permission["SourceArn"]) == "SegmentedRenditionEndedRule"
    # an event that could not be answered rests in a dead-letter queue, which alarms
    function = resources["SegmentedRenditionFunction"]["Properties"]
    destination = function["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert resource_name(destination["Destination"]) == "SegmentedRenditionDeadLetterQueue"


def test_the_state_machine_may_only_invoke_its_tasks_function_and_run_its_parts(template):
    resources = template["Resources"]
    role_id = resource_name(resources["SegmentedRenditionStateMachine"]["Properties"]["RoleArn"])
    role = resources[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
    grants = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    grants.add((action, resource_name(resource)))
    invoke = {(a, r) for a, r in grants if not a.startswith("logs:")}
    assert invoke == {
        ("lambda:InvokeFunction", "SegmentedRenditionFunction"),
        # the Distributed Map's child executions, one per part
        ("states:StartExecution", "SegmentedRenditionStateMachine"),
        ("states:DescribeExecution", "SegmentedRenditionStateMachine EncodeParts children"),
        ("states:StopExecution", "SegmentedRenditionStateMachine EncodeParts children"),
    }
    # CloudWatch Logs delivery for the execution logs: account-level calls without a resource type
    assert {r for a, r in grants if a.startswith("logs:")} == {"*"}
    for profile, worker in RENDITION_WORKERS.items():
        variables = resources[worker]["Properties"]["Environment"]["Variables"]
        assert variables["STATE_MACHINE_ARN"] == {"Ref": "SegmentedRenditionStateMachine"}, profile


def test_segmented_rendition_scratch_expires(template):
    rules = template["Resources"]["OutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (scratch,) = [r for r in rules if r.get("Prefix") == "scratch/"]
    assert scratch["Status"] == "Enabled" and scratch["ExpirationInDays"] == 1
