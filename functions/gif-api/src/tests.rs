//! The handler against real event JSON (Function URL and API Gateway HTTP API v2) and a mocked
//! DynamoDB/SQS/S3 (`aws-smithy-mocks`): every action and every error answer.

use super::*;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_sqs::operation::send_message::SendMessageOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use shared::contracts::gif::TaskDetail;
use shared::contracts::{fixture as contract_fixture, round_trip};
use std::collections::HashMap;

const TASK: &str = "3f2b8c1e-9d4a-4b6e-8f00-1234567890ab";

fn config() -> Config {
    Config::from_env(EnvReader::from_pairs([
        ("TASKS_TABLE", "tasks"),
        ("GIF_JOBS_QUEUE_URL", "http://sqs.local/000000000000/gif-jobs"),
        ("GIF_BUCKET", "outputs"),
        ("INPUT_BUCKET", "inputs"),
    ]))
    .unwrap()
}

fn api(dynamodb: &[&Rule], sqs: &[&Rule]) -> Api {
    Api {
        dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb, |c| c
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())),
        sqs: mock_client!(aws_sdk_sqs, RuleMode::MatchAny, sqs, |c| c
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())),
        // Presigning makes no request, but a mocked client would intercept it: a real client
        // with fixed credentials signs offline.
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version_latest()
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                ))
                .build(),
        ),
        config: config(),
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A Function URL request with `body` as its JSON text.
fn request(body: &str) -> Request {
    let mut event = fixture("function-url-convert.json");
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// `get_task_status` of [`TASK`].
fn status_request() -> Request {
    request(&format!(r#"{{"action":"get_task_status","task_id":"{TASK}"}}"#))
}

async fn call(api: &Api, request: Request) -> (u16, Value) {
    let response = api.handle(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    (status, body)
}

/// The answer's body is exactly a `T` (see `shared::contracts::round_trip`).
fn typed<T>(body: &Value) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    round_trip(body).unwrap_or_else(|e| panic!("{body}: {e}"))
}

/// The code of an error answer (which must be exactly an [`ApiErrorAnswer`]).
fn error_code(body: &Value) -> Code {
    let answer: ApiErrorAnswer = typed(body);
    assert!(!answer.error.message.is_empty(), "{body}");
    answer.error.code
}

/// `body` is the fixture `name` of `shared/fixtures/`, but for the fields named in `varying`
/// (a random id, a time), which must be there and are taken from `body`.
fn assert_is_fixture(body: &Value, name: &str, varying: &[&str]) {
    let mut expected = contract_fixture(name);
    for field in varying {
        assert!(body.get(*field).is_some(), "{field} missing from {body}");
        expected[*field] = body[*field].clone();
    }
    assert_eq!(*body, expected, "the answer is not {name}");
}

fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn future_expiry() -> AttributeValue {
    n(chrono::Utc::now().timestamp() + 3600)
}

fn get_item_returns(found: Option<HashMap<String, AttributeValue>>) -> Rule {
    mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| {
            r.table_name() == Some("tasks")
                && r.consistent_read() == Some(true)
                && r.key().and_then(|k| k.get("task_id")) == Some(&s(TASK))
        })
        .then_output(move || GetItemOutput::builder().set_item(found.clone()).build())
}

#[tokio::test]
async fn convert_writes_a_queued_task_and_enqueues_its_job() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            let item = r.item().unwrap();
            r.table_name() == Some("tasks")
                && r.condition_expression() == Some("attribute_not_exists(#id)")
                && item.get("status") == Some(&s(TaskStatus::Queued.as_str()))
                && item.get("width") == Some(&AttributeValue::N("320".into()))
                && item.get("source") == Some(&s("https://example.com/clip.mp4"))
                && item.contains_key("expires_at")
                && item.contains_key("created_at")
        })
        .then_output(|| PutItemOutput::builder().build());
    let send = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|r| r.queue_url() == Some("http://sqs.local/000000000000/gif-jobs"))
        .then_output(|| SendMessageOutput::builder().message_id("m").build());
    let api = api(&[&put], &[&send]);
    let (status, body) = call(
        &api,
        lambda_http::request::from_str(&fixture("function-url-convert.json").to_string()).unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let accepted: TaskAccepted = typed(&body);
    assert!(is_task_id(&accepted.task_id), "{}", accepted.task_id);
    assert_eq!(accepted.status, TaskStatus::Queued);
    assert_eq!((accepted.duration, accepted.width, accepted.fps), (3.0, 320, 10));
    assert_is_fixture(&body, "gif-task-accepted.json", &["task_id", "expires_at"]);
    assert_eq!(put.num_calls(), 1);
    assert_eq!(send.num_calls(), 1);
}

#[tokio::test]
async fn the_job_message_carries_the_task_id_and_the_capped_duration() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let send = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|r| {
            let body: Value = serde_json::from_str(r.message_body().unwrap()).unwrap();
            let job: GifJob = typed(&body);
            assert_is_fixture(&body, "gif-job.json", &["task_id"]);
            is_task_id(&job.task_id) && job.params.duration_secs == 15.0 && job.src_url == "s3://inputs/a b.mp4"
        })
        .then_output(|| SendMessageOutput::builder().build());
    let api = api(&[&put], &[&send]);
    let (status, body) = call(
        &api,
        request(r#"{"action":"convert","src_url":"s3://inputs/a b.mp4","duration":120}"#),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let accepted: TaskAccepted = typed(&body);
    assert_eq!(accepted.duration, 15.0);
    assert!(accepted.note.unwrap().contains("capped"));
    assert_eq!(send.num_calls(), 1);
}

#[tokio::test]
async fn a_job_that_cannot_be_queued_takes_its_task_back_and_answers_503() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let delete = mock!(aws_sdk_dynamodb::Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
    let send = mock!(aws_sdk_sqs::Client::send_message).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(503).unwrap(),
            aws_smithy_types::body::SdkBody::from("{}"),
        )
    });
    let api = api(&[&put, &delete], &[&send]);
    let (status, body) = call(
        &api,
        request(r#"{"action":"convert","src_url":"https://example.com/a.mp4"}"#),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), Code::ServiceUnavailable);
    assert_eq!(delete.num_calls(), 1);
}

#[tokio::test]
async fn status_of_a_running_task_is_its_progress_even_from_an_http_api_v2_event() {
    let get = get_item_returns(Some(item(&[
        ("task_id", s(TASK)),
        ("status", s(TaskStatus::Running.as_str())),
        ("progress", n(40)),
        ("expires_at", future_expiry()),
    ])));
    let api = api(&[&get], &[]);
    // API Gateway HTTP API, payload 2.0, binary content type: the body arrives base64-encoded.
    let request = lambda_http::request::from_str(&fixture("http-api-v2-status.json").to_string()).unwrap();
    let (status, body) = call(&api, request).await;
    assert_eq!(status, 200, "{body}");
    assert_is_fixture(&body, "gif-task-status-running.json", &[]);
    assert_eq!(
        typed::<TaskStatusAnswer>(&body),
        TaskStatusAnswer::in_progress(TASK, TaskStatus::Running, 40)
    );
}

#[tokio::test]
async fn status_of_a_queued_task_is_not_ready_at_zero() {
    let get = get_item_returns(Some(item(&[
        ("status", s(TaskStatus::Queued.as_str())),
        ("progress", n(0)),
    ])));
    let (status, body) = call(&api(&[&get], &[]), status_request()).await;
    assert_eq!(status, 200);
    let answer: TaskStatusAnswer = typed(&body);
    assert_eq!(
        (answer.ready, answer.status, answer.detail),
        (false, TaskStatus::Queued, TaskDetail::Progress { progress: 0 })
    );
    assert_is_fixture(&body, "gif-task-status-queued.json", &[]);
}

#[tokio::test]
async fn status_of_a_done_task_is_a_presigned_link_valid_for_an_hour() {
    let get = get_item_returns(Some(item(&[
        ("status", s(TaskStatus::Done.as_str())),
        ("gif_bucket", s("outputs")),
        ("gif_key", s(&format!("gifs/{TASK}.gif"))),
        ("gif_bytes", n(1234)),
        ("gif_width", n(320)),
        ("gif_height", n(180)),
        ("gif_frames", n(20)),
        ("expires_at", future_expiry()),
    ])));
    let (status, body) = call(&api(&[&get], &[]), status_request()).await;
    assert_eq!(status, 200, "{body}");
    let answer: TaskStatusAnswer = typed(&body);
    assert!(answer.ready);
    let TaskDetail::Gif(gif) = answer.detail else {
        panic!("no GIF in {body}")
    };
    let url = gif.gif_url;
    assert!(url.starts_with("https://outputs.s3.us-east-1.amazonaws.com/"), "{url}");
    assert!(url.contains(&format!("gifs/{TASK}.gif")), "{url}");
    assert!(url.contains("X-Amz-Expires=3600"), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert_eq!((gif.width, gif.height, gif.frames), (Some(320), Some(180), Some(20)));
    // The signature and its date change with every run.
    assert_is_fixture(&body, "gif-task-status-done.json", &["gif_url"]);
}

#[tokio::test]
async fn status_of_a_failed_task_is_its_reason() {
    let get = get_item_returns(Some(item(&[
        ("status", s(TaskStatus::Failed.as_str())),
        ("error_code", s(Code::SourceAddressForbidden.as_str())),
        ("error_message", s("localhost resolves to 127.0.0.1")),
    ])));
    let (status, body) = call(&api(&[&get], &[]), status_request()).await;
    assert_eq!(status, 200);
    let answer: TaskStatusAnswer = typed(&body);
    assert_eq!((answer.ready, answer.status), (false, TaskStatus::Failed));
    let TaskDetail::Error { error } = answer.detail else {
        panic!("no error in {body}")
    };
    assert_eq!(error.code, Code::SourceAddressForbidden);
    assert_is_fixture(&body, "gif-task-status-failed.json", &[]);
}

#[tokio::test]
async fn a_failed_task_without_a_known_code_is_answered_failed() {
    for code in [None, Some("NOT_A_CODE_WE_KNOW")] {
        let mut row = vec![("status", s(TaskStatus::Failed.as_str()))];
        row.extend(code.map(|code| ("error_code", s(code))));
        let get = get_item_returns(Some(item(&row)));
        let (status, body) = call(&api(&[&get], &[]), status_request()).await;
        assert_eq!(status, 200);
        assert_eq!(body["error"]["code"], Code::Failed.as_str(), "{code:?}: {body}");
    }
}

#[tokio::test]
async fn an_unknown_or_expired_task_is_404() {
    let missing = get_item_returns(None);
    let (status, body) = call(&api(&[&missing], &[]), status_request()).await;
    assert_eq!((status, error_code(&body)), (404, Code::TaskNotFound));
    assert_is_fixture(&body, "gif-api-error.json", &[]);

    let expired = get_item_returns(Some(item(&[
        ("status", s(TaskStatus::Done.as_str())),
        ("expires_at", n(chrono::Utc::now().timestamp() - 5)),
    ])));
    let (status, body) = call(&api(&[&expired], &[]), status_request()).await;
    assert_eq!((status, error_code(&body)), (404, Code::TaskNotFound));
}

#[tokio::test]
async fn every_bad_request_gets_a_named_json_error_and_touches_nothing() {
    let any_put = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let any_get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| GetItemOutput::builder().build());
    let any_send = mock!(aws_sdk_sqs::Client::send_message).then_output(|| SendMessageOutput::builder().build());
    let api = api(&[&any_put, &any_get], &[&any_send]);
    for (body, status, code) in [
        ("not json", 400, Code::BadJson),
        ("[1,2]", 400, Code::BadJson),
        ("", 400, Code::BadJson),
        (r#"{"src_url":"https://example.com/a.mp4"}"#, 400, Code::MissingAction),
        (r#"{"action":"delete_everything"}"#, 400, Code::UnknownAction),
        (r#"{"action":"convert"}"#, 400, Code::MissingSrcUrl),
        (r#"{"action":"convert","src_url":42}"#, 400, Code::SourceUrlInvalid),
        (
            r#"{"action":"convert","src_url":"file:///etc/passwd"}"#,
            400,
            Code::SourceSchemeRefused,
        ),
        (
            r#"{"action":"convert","src_url":"gopher://example.com/"}"#,
            400,
            Code::SourceSchemeRefused,
        ),
        (
            r#"{"action":"convert","src_url":"http://169.254.169.254/latest/"}"#,
            400,
            Code::SourceAddressForbidden,
        ),
        (
            r#"{"action":"convert","src_url":"http://2130706433/"}"#,
            400,
            Code::SourceAddressForbidden,
        ),
        (
            r#"{"action":"convert","src_url":"s3://someone-elses/a.mp4"}"#,
            400,
            Code::SourceBucketRefused,
        ),
        (
            r#"{"action":"convert","src_url":"https://example.com/a.mp4","width":5000}"#,
            400,
            Code::InvalidParameter,
        ),
        (
            r#"{"action":"convert","src_url":"https://example.com/a.mp4","fps":"ten"}"#,
            400,
            Code::InvalidParameter,
        ),
        (
            r#"{"action":"convert","src_url":"https://example.com/a.mp4","start":-3}"#,
            400,
            Code::InvalidParameter,
        ),
        (r#"{"action":"get_task_status"}"#, 400, Code::MissingTaskId),
        (
            r#"{"action":"get_task_status","task_id":"../../etc"}"#,
            400,
            Code::InvalidTaskId,
        ),
        (r#"{"action":"get_task_status","task_id":7}"#, 400, Code::InvalidTaskId),
    ] {
        let (got_status, got) = call(&api, request(body)).await;
        // error_code also checks that the message is not empty.
        assert_eq!((got_status, error_code(&got)), (status, code), "{body}: {got}");
    }
    let mut event = fixture("function-url-convert.json");
    event["requestContext"]["http"]["method"] = "GET".into();
    let (status, body) = call(&api, lambda_http::request::from_str(&event.to_string()).unwrap()).await;
    assert_eq!((status, error_code(&body)), (405, Code::MethodNotAllowed));
    let (status, body) = call(
        &api,
        request(&format!(r#"{{"action":"convert","src_url":"{}"}}"#, "a".repeat(20_000))),
    )
    .await;
    assert_eq!((status, error_code(&body)), (413, Code::BodyTooLarge));
    assert_eq!(any_put.num_calls() + any_get.num_calls() + any_send.num_calls(), 0);
}

#[test]
fn the_allow_list_takes_loopback_sockets_only_and_names_the_variable() {
    let base = [
        ("TASKS_TABLE", "tasks"),
        ("GIF_JOBS_QUEUE_URL", "q"),
        ("GIF_BUCKET", "outputs"),
        ("INPUT_BUCKET", "inputs"),
    ];
    let with = |list: &'static str| {
        let mut pairs = base.to_vec();
        pairs.push(("SOURCE_LOOPBACK_ALLOW_LIST", list));
        Config::from_env(EnvReader::from_pairs(pairs))
    };
    assert_eq!(
        with("127.0.0.1:4566, 127.0.0.1:4579")
            .unwrap()
            .policy
            .allow_list()
            .len(),
        2
    );
    let err = with("10.0.0.1:80").unwrap_err().to_string();
    assert!(err.contains("SOURCE_LOOPBACK_ALLOW_LIST"), "{err}");
    let err = with("localhost:80").unwrap_err().to_string();
    assert!(err.contains("SOURCE_LOOPBACK_ALLOW_LIST"), "{err}");
    assert!(Config::from_env(EnvReader::from_pairs(base))
        .unwrap()
        .policy
        .allow_list()
        .is_empty());
}
