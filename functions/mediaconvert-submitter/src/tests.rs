//! Unit tests: the decisions, the job a record becomes, and the handler against the SDK's own
//! mocks (`aws-smithy-mocks`).
// DescribeEndpoints is deprecated in the SDK but still what discovery calls.
#![allow(deprecated)]

use super::*;
use aws_sdk_mediaconvert::operation::create_job::CreateJobOutput;
use aws_sdk_mediaconvert::operation::describe_endpoints::DescribeEndpointsOutput;
use aws_sdk_mediaconvert::types::{Endpoint, Job as McJob};
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use lambda_runtime::Context;
use shared::contracts::{fixture as contract_fixture, ResultStatus};

const QUEUE: &str = "arn:aws:mediaconvert:us-east-1:123456789012:queues/Default";
const ROLE: &str = "arn:aws:iam::123456789012:role/video-suite-mediaconvert";
const RESULTS: &str = "arn:aws:sns:us-east-1:123456789012:video-suite-results";

fn config_with(extra: &[(&'static str, &'static str)]) -> Config {
    let mut pairs = vec![
        ("MEDIACONVERT_QUEUE_ARN", QUEUE),
        ("MEDIACONVERT_ROLE_ARN", ROLE),
        ("OUTPUT_BUCKET", "video-suite-output"),
        ("PIPELINE_NAME", "video-suite"),
        ("RESULTS_TOPIC_ARN", RESULTS),
    ];
    pairs.extend_from_slice(extra);
    Config::from_env(EnvReader::from_pairs(pairs)).unwrap()
}

fn config() -> Config {
    config_with(&[])
}

fn event() -> Value {
    serde_json::from_str(include_str!("../tests/fixtures/s3-put.json")).unwrap()
}

fn record_with(key: &str, size: i64) -> Value {
    let mut record = event()["Records"][0].clone();
    record["s3"]["object"]["key"] = key.into();
    record["s3"]["object"]["size"] = size.into();
    record
}

fn submitted(decision: Decision) -> SourceObject {
    match decision {
        Decision::Submit(source) => source,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_record_becomes_its_decoded_object() {
    let source = submitted(decide(&event()["Records"][0], &config()));
    assert_eq!(source.bucket, "video-suite-source");
    assert_eq!(source.key, "mediaconvert-uploads/cats/my cat+1 é.mp4");
    assert_eq!(source.etag.as_deref(), Some("0123456789abcdef0123456789abcdef"));
}

#[test]
fn the_job_has_the_input_destination_arns_and_source_metadata() {
    let config = config();
    let source = submitted(decide(&event()["Records"][0], &config));
    let job = config.job_for(&source).expect("hd-sd is built in");
    assert_eq!(
        job.settings.inputs[0].file_input,
        "s3://video-suite-source/mediaconvert-uploads/cats/my cat+1 é.mp4"
    );
    let destination = &job.settings.output_groups[0]
        .output_group_settings
        .file_group_settings
        .as_ref()
        .unwrap()
        .destination;
    assert_eq!(
        destination,
        "s3://video-suite-output/mediaconvert/mediaconvert-uploads/cats/"
    );
    assert_eq!((job.queue.as_str(), job.role.as_str()), (QUEUE, ROLE));
    assert_eq!(
        job.user_metadata[metadata::SOURCE_KEY],
        "mediaconvert-uploads/cats/my cat+1 é.mp4"
    );
    assert_eq!(job.user_metadata[metadata::SOURCE_BUCKET], "video-suite-source");
    assert_eq!(job.user_metadata[metadata::PIPELINE], "video-suite");
    assert_eq!(job.user_metadata[metadata::TEMPLATE], "hd-sd");
}

#[test]
fn the_token_is_stable_across_duplicate_events_and_changes_with_the_version() {
    let first = submitted(decide(&event()["Records"][0], &config()));
    // S3 delivers at least once: the same record again, possibly with a new sequencer.
    let mut duplicate = event()["Records"][0].clone();
    duplicate["s3"]["object"]["sequencer"] = "0A1B2C3D4E5F6789FF".into();
    duplicate["responseElements"]["x-amz-request-id"] = "OTHER".into();
    let again = submitted(decide(&duplicate, &config()));
    assert_eq!(first.client_request_token(), again.client_request_token());

    let mut new_content = event()["Records"][0].clone();
    new_content["s3"]["object"]["eTag"] = "ffffffffffffffffffffffffffffffff".into();
    let other = submitted(decide(&new_content, &config()));
    assert_ne!(first.client_request_token(), other.client_request_token());

    let mut versioned = event()["Records"][0].clone();
    versioned["s3"]["object"]["versionId"] = "v2".into();
    let versioned = submitted(decide(&versioned, &config()));
    assert_ne!(first.client_request_token(), versioned.client_request_token());
    // Another key with the same ETag is another job.
    let other_key = submitted(decide(&record_with("mediaconvert-uploads/other.mp4", 5), &config()));
    assert_ne!(first.client_request_token(), other_key.client_request_token());
}

#[test]
fn objects_outside_the_prefix_and_folder_markers_are_skipped() {
    assert!(matches!(
        decide(&record_with("uploads/a.mp4", 5), &config()),
        Decision::Skip(_)
    ));
    assert!(matches!(
        decide(&record_with("mediaconvert-uploads/folder%2F", 0), &config()),
        Decision::Skip(_)
    ));
    let mut deleted = record_with("mediaconvert-uploads/a.mp4", 5);
    deleted["eventName"] = "ObjectRemoved:Delete".into();
    assert!(matches!(decide(&deleted, &config()), Decision::Skip(_)));
}

#[test]
fn empty_and_malformed_records_are_named_rejections() {
    match decide(&record_with("mediaconvert-uploads/empty.mp4", 0), &config()) {
        Decision::Reject(result) => {
            let published = serde_json::to_value(&result).unwrap();
            assert_eq!(
                published,
                contract_fixture("result-mediaconvert-rejected.json"),
                "publishes {published:#}"
            );
            assert_eq!(result.job, Job::Mediaconvert);
            assert_eq!(result.reason.unwrap().code, Code::EmptyObject);
        }
        other => panic!("unexpected {other:?}"),
    }
    match decide(
        &serde_json::json!({"eventName": "ObjectCreated:Put", "s3": 5}),
        &config(),
    ) {
        Decision::Reject(result) => assert_eq!(result.reason.unwrap().code, Code::MalformedEvent),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_key_longer_than_s3_allows_is_a_named_rejection_that_names_it_cut_short() {
    let huge = format!("mediaconvert-uploads/{}.mp4", "k".repeat(300_000));
    match decide(&record_with(&huge, 5), &config()) {
        Decision::Reject(result) => {
            assert_eq!(result.reason.unwrap().code, Code::KeyTooLong);
            assert_eq!(result.source.key.len(), shared::s3_event::SHOWN_KEY_CHARS);
        }
        other => panic!("unexpected {other:?}"),
    }
    let huge_malformed = serde_json::json!({"eventName": "ObjectCreated:Put", "s3": {"object": {"key": huge}}});
    match decide(&huge_malformed, &config()) {
        Decision::Reject(result) => {
            assert_eq!(result.reason.unwrap().code, Code::MalformedEvent);
            assert_eq!(result.source.key.len(), shared::s3_event::MAX_KEY_BYTES);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn configuration_names_every_problem() {
    let err = Config::from_env(EnvReader::from_pairs([("MEDIACONVERT_TEMPLATE", "8k")])).unwrap_err();
    let text = err.to_string();
    for name in [
        "MEDIACONVERT_QUEUE_ARN is missing",
        "MEDIACONVERT_ROLE_ARN is missing",
        "OUTPUT_BUCKET is missing",
    ] {
        assert!(text.contains(name), "{text}");
    }
    let hls = config_with(&[("MEDIACONVERT_TEMPLATE", "hls-abr"), ("OUTPUT_PREFIX", "mc/")]);
    assert_eq!(hls.template_name, "hls-abr");
    assert_eq!(hls.output_prefix, "mc/");
    assert!(matches!(hls.template, TemplateSource::BuiltIn(_)));
    let console = config_with(&[("MEDIACONVERT_TEMPLATE", "vod-hls-ladder")]);
    assert_eq!(
        console.template,
        TemplateSource::Account,
        "any other name is the account's"
    );
}

fn job_output(id: &'static str) -> CreateJobOutput {
    CreateJobOutput::builder().job(McJob::builder().id(id).build()).build()
}

fn submitter(config: Config, sns_rules: &[&aws_smithy_mocks::Rule], mc_rules: &[&aws_smithy_mocks::Rule]) -> Submitter {
    let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns_rules);
    let mediaconvert = mock_client!(aws_sdk_mediaconvert, RuleMode::MatchAny, mc_rules, |c| c
        .retry_config(aws_sdk_mediaconvert::config::retry::RetryConfig::disabled()));
    Submitter::new(config, sns, mediaconvert)
}

#[tokio::test]
async fn the_endpoint_is_discovered_once_and_the_job_carries_token_role_queue_and_metadata() {
    let describe = mock!(aws_sdk_mediaconvert::Client::describe_endpoints).then_output(|| {
        DescribeEndpointsOutput::builder()
            .endpoints(
                Endpoint::builder()
                    .url("https://abc123.mediaconvert.us-east-1.amazonaws.com")
                    .build(),
            )
            .build()
    });
    let source = submitted(decide(&event()["Records"][0], &config()));
    let token = source.client_request_token();
    let create = mock!(aws_sdk_mediaconvert::Client::create_job)
        .match_requests(move |r| {
            let input = &r.settings().unwrap().inputs()[0];
            r.client_request_token() == Some(token.as_str())
                && r.role() == Some(ROLE)
                && r.queue() == Some(QUEUE)
                && input.file_input() == Some("s3://video-suite-source/mediaconvert-uploads/cats/my cat+1 é.mp4")
                && r.user_metadata().unwrap()["sourceKey"] == "mediaconvert-uploads/cats/my cat+1 é.mp4"
        })
        .then_output(|| job_output("1763715600000-abcdef"));
    let submitter = submitter(config(), &[], &[&describe, &create]);
    for _ in 0..2 {
        let summary = submitter
            .handle(LambdaEvent::new(event(), Context::default()))
            .await
            .unwrap();
        assert_eq!(summary.submitted, ["1763715600000-abcdef"]);
    }
    assert_eq!(
        describe.num_calls(),
        1,
        "discovered once, reused by the second invocation"
    );
    assert_eq!(create.num_calls(), 2);
}

#[tokio::test]
async fn a_configured_endpoint_is_used_without_discovery() {
    let describe = mock!(aws_sdk_mediaconvert::Client::describe_endpoints)
        .then_output(|| DescribeEndpointsOutput::builder().build());
    let create = mock!(aws_sdk_mediaconvert::Client::create_job).then_output(|| job_output("j"));
    let submitter = submitter(
        config_with(&[(
            "MEDIACONVERT_ENDPOINT",
            "https://abc123.mediaconvert.us-east-1.amazonaws.com",
        )]),
        &[],
        &[&describe, &create],
    );
    submitter
        .handle(LambdaEvent::new(event(), Context::default()))
        .await
        .unwrap();
    assert_eq!(describe.num_calls(), 0);
    assert_eq!(create.num_calls(), 1);
}

fn mediaconvert_error(status: u16, kind: &str) -> aws_smithy_runtime_api::http::Response {
    let mut response = aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
        aws_smithy_types::body::SdkBody::from(r#"{"message": "refused"}"#),
    );
    response.headers_mut().insert("x-amzn-errortype", kind.to_owned());
    response
}

#[tokio::test]
async fn a_job_mediaconvert_refuses_is_answered_as_failed() {
    let create = mock!(aws_sdk_mediaconvert::Client::create_job)
        .then_http_response(|| mediaconvert_error(400, "BadRequestException"));
    let answered = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            let published: Value = serde_json::from_str(r.message().unwrap_or("")).unwrap();
            assert_eq!(
                published,
                contract_fixture("result-mediaconvert-refused.json"),
                "publishes {published:#}"
            );
            let result: PipelineResult = serde_json::from_value(published).unwrap();
            r.topic_arn() == Some(RESULTS)
                && result.status == ResultStatus::Failed
                && result.reason.unwrap().code == Code::JobRefused
        })
        .then_output(|| PublishOutput::builder().message_id("m").build());
    let submitter = submitter(
        config_with(&[("MEDIACONVERT_ENDPOINT", "https://x")]),
        &[&answered],
        &[&create],
    );
    let summary = submitter
        .handle(LambdaEvent::new(event(), Context::default()))
        .await
        .unwrap();
    assert!(summary.submitted.is_empty());
    assert_eq!(answered.num_calls(), 1);
}

#[tokio::test]
async fn throttling_fails_the_invocation_as_retryable() {
    let create = mock!(aws_sdk_mediaconvert::Client::create_job)
        .then_http_response(|| mediaconvert_error(429, "TooManyRequestsException"));
    let submitter = submitter(config_with(&[("MEDIACONVERT_ENDPOINT", "https://x")]), &[], &[&create]);
    let err = submitter
        .handle(LambdaEvent::new(event(), Context::default()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

fn console_template() -> aws_sdk_mediaconvert::types::JobTemplate {
    use aws_sdk_mediaconvert::types as mc;
    let hls = crate::account::tests::hls_group_settings();
    mc::JobTemplate::builder()
        .name("vod-hls-ladder")
        .settings(
            mc::JobTemplateSettings::builder()
                .output_groups(mc::OutputGroup::builder().output_group_settings(hls).build())
                .build(),
        )
        .build()
}

#[tokio::test]
async fn an_account_template_is_read_once_and_named_in_every_job_with_this_deployments_destination() {
    use aws_sdk_mediaconvert::operation::get_job_template::GetJobTemplateOutput;
    let get = mock!(aws_sdk_mediaconvert::Client::get_job_template)
        .match_requests(|r| r.name() == Some("vod-hls-ladder"))
        .then_output(|| GetJobTemplateOutput::builder().job_template(console_template()).build());
    let create = mock!(aws_sdk_mediaconvert::Client::create_job)
        .match_requests(|r| {
            let settings = r.settings().unwrap();
            let hls = settings.output_groups()[0]
                .output_group_settings()
                .and_then(|s| s.hls_group_settings())
                .unwrap();
            r.job_template() == Some("vod-hls-ladder")
                && r.role() == Some(ROLE)
                && r.queue() == Some(QUEUE)
                && settings.inputs()[0].file_input()
                    == Some("s3://video-suite-source/mediaconvert-uploads/cats/my cat+1 é.mp4")
                && hls.destination() == Some("s3://video-suite-output/mediaconvert/mediaconvert-uploads/cats/hls/")
                && hls.segment_length() == Some(6)
                && r.user_metadata().unwrap()["template"] == "vod-hls-ladder"
        })
        .then_output(|| job_output("j"));
    let config = config_with(&[
        ("MEDIACONVERT_TEMPLATE", "vod-hls-ladder"),
        (
            "MEDIACONVERT_ENDPOINT",
            "https://abc123.mediaconvert.us-east-1.amazonaws.com",
        ),
    ]);
    let submitter = submitter(config, &[], &[&get, &create]);
    for _ in 0..2 {
        let summary = submitter
            .handle(LambdaEvent::new(event(), Context::default()))
            .await
            .unwrap();
        assert_eq!(summary.submitted, ["j"]);
    }
    assert_eq!(get.num_calls(), 1, "read once, kept for the next invocation");
    assert_eq!(create.num_calls(), 2);
}

#[tokio::test]
async fn an_account_template_mediaconvert_does_not_know_is_retryable_and_says_how_to_register_it() {
    let get = mock!(aws_sdk_mediaconvert::Client::get_job_template).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(404).unwrap(),
            aws_smithy_types::body::SdkBody::from(r#"{"__type":"NotFoundException","message":"template not found"}"#),
        )
    });
    let config = config_with(&[
        ("MEDIACONVERT_TEMPLATE", "typo-ladder"),
        (
            "MEDIACONVERT_ENDPOINT",
            "https://abc123.mediaconvert.us-east-1.amazonaws.com",
        ),
    ]);
    let submitter = submitter(config, &[], &[&get]);
    let err = submitter
        .handle(LambdaEvent::new(event(), Context::default()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("register_job_templates.py"), "{err}");
}
