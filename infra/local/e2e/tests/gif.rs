//! End-to-end tests of the GIF task API and converter on the local stack: SigV4-signed calls to
//! the Function URL over real HTTP, DynamoDB and SQS in the emulator, the converter fetching
//! real HTTP sources (the local S3 and the `gif_sources` service, both allow-listed loopback
//! sockets) and real ffmpeg/ffprobe.
//!
//! `#[ignore]`d for a plain `cargo test`; `make test` deploys the stack and runs them.

use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use gif_converter::gif::inspect_gif;
use harness::gif::{download, gif_sources_url, presigned_get, put_queued_task, GifApi};
use harness::observe::invoke;
use harness::{unique_suffix, upload, SampleSpec, TestEnv};
use serde_json::{json, Value};
use shared::contracts::gif::{ApiErrorAnswer, TaskStatus, TaskStatusAnswer};
use shared::contracts::Reason;
use shared::ffmpeg::Deadline;
use shared::gif::{attr, GifJob, GifParams, GIF_JOB_VERSION};
use shared::Code;

const WAIT: Duration = Duration::from_secs(240);

/// The common test environment, the GIF API and the tasks table.
struct Env {
    base: TestEnv,
    dynamodb: aws_sdk_dynamodb::Client,
    api: GifApi,
}

impl std::ops::Deref for Env {
    type Target = TestEnv;
    fn deref(&self) -> &TestEnv {
        &self.base
    }
}

async fn env() -> Env {
    let base = TestEnv::load().await;
    let sdk = shared::clients::load_sdk_config().await;
    Env {
        api: GifApi::from_outputs(&base.outputs).unwrap(),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        base,
    }
}

impl Env {
    /// A 640x360, 25 fps, 4 s sample in the source bucket under a key the upload publisher
    /// does not treat as a video (so no renditions are made of it); returns its key.
    async fn source_video(&self) -> String {
        let local = self
            .sample(SampleSpec {
                width: 640,
                height: 360,
                fps: 25,
                seconds: 4.0,
                with_audio: true,
            })
            .await;
        let key = format!("gif-e2e/{}/source.bin", unique_suffix());
        upload(&self.clients.s3, self.source_bucket(), &key, &local)
            .await
            .unwrap();
        key
    }

    async fn presigned(&self, key: &str) -> String {
        presigned_get(&self.clients.s3, self.outputs.get("SourceBucketName"), key)
            .await
            .unwrap()
    }

    async fn task_item(&self, task_id: &str) -> std::collections::HashMap<String, AttributeValue> {
        self.dynamodb
            .get_item()
            .table_name(self.outputs.get("TasksTableName"))
            .key(attr::TASK_ID, AttributeValue::S(task_id.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no task item {task_id}"))
    }

    /// Converts `src_url` and waits for the task to settle.
    async fn convert_and_wait(&self, request: Value) -> (String, TaskStatusAnswer) {
        let task_id = self.api.convert(request).await.unwrap();
        let answer = self.api.wait(&task_id, WAIT, |_| {}).await.unwrap();
        (task_id, answer)
    }

    /// Converts each source with the default parameters; all are queued before any is waited
    /// for, so the converter works on them side by side.
    async fn convert_each(&self, src_urls: impl IntoIterator<Item = &String>) -> Vec<String> {
        let mut tasks = Vec::new();
        for src_url in src_urls {
            tasks.push(
                self.api
                    .convert(json!({"action": "convert", "src_url": src_url}))
                    .await
                    .unwrap(),
            );
        }
        tasks
    }

    /// Writes a QUEUED task straight into the table and its job straight onto the queue: the
    /// converter's own checks, without the API's in front of them.
    async fn queue_job_directly(&self, src_url: &str) -> String {
        let task_id = put_queued_task(&self.dynamodb, self.outputs.get("TasksTableName"))
            .await
            .unwrap();
        let job = GifJob {
            version: GIF_JOB_VERSION,
            task_id: task_id.clone(),
            src_url: src_url.to_owned(),
            params: SMALL,
        };
        self.clients
            .sqs
            .send_message()
            .queue_url(self.outputs.get("GifJobsQueueUrl"))
            .message_body(serde_json::to_string(&job).unwrap())
            .send()
            .await
            .unwrap();
        task_id
    }
}

const SMALL: GifParams = GifParams {
    start_secs: 0.0,
    duration_secs: 1.0,
    width: 160,
    fps: 5,
};

/// A `convert` request for [`SMALL`].
fn small_request(src_url: &str) -> Value {
    json!({"action": "convert", "src_url": src_url, "duration": SMALL.duration_secs, "width": SMALL.width, "fps": SMALL.fps})
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An error answer of the API (fails the test when the body is not one).
fn api_error(answer: &Value) -> Reason {
    serde_json::from_value::<ApiErrorAnswer>(answer.clone())
        .unwrap_or_else(|e| panic!("not an error answer ({e}): {answer}"))
        .error
}

/// The status of a settled task and the code it failed with, if it did.
fn outcome(answer: &TaskStatusAnswer) -> (TaskStatus, Option<Code>) {
    (answer.status, answer.error().map(|e| e.code))
}

async fn probe_gif(bytes: &[u8], dir: &Path) -> gif_converter::gif::GifInfo {
    let path = dir.join(format!("{}.gif", unique_suffix()));
    std::fs::write(&path, bytes).unwrap();
    inspect_gif(Path::new("ffprobe"), &path, Deadline::after(Duration::from_secs(30)))
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn convert_reports_progress_then_a_working_link_to_a_gif_of_the_asked_segment_size_and_rate() {
    let env = env().await;
    let key = env.source_video().await;
    let src_url = env.presigned(&key).await;
    let task_id = env
        .api
        .convert(json!({"action": "convert", "src_url": src_url, "start": 1, "duration": 2, "width": 320, "fps": 10}))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let answer = env
        .api
        .wait(&task_id, WAIT, |answer| seen.push(answer.clone()))
        .await
        .unwrap();
    assert_eq!(answer.status, TaskStatus::Done, "{answer:?}");
    assert!(answer.ready);
    // Before DONE every answer was "not ready" with a progress that never went down.
    let mut last = 0;
    for early in seen.iter().filter(|a| a.status != TaskStatus::Done) {
        assert!(!early.ready, "{early:?}");
        assert!(
            matches!(early.status, TaskStatus::Queued | TaskStatus::Running),
            "{early:?}"
        );
        let progress = early.progress().unwrap();
        assert!(progress >= last && progress <= 100, "{seen:?}");
        last = progress;
    }
    let link = answer.gif().expect("a DONE answer links its GIF");
    let url = link.gif_url.as_str();
    assert!(url.contains(&format!("gifs/{task_id}.gif")), "{url}");
    assert!(url.contains("X-Amz-Expires=3600"), "{url}");
    assert_eq!(link.link_expires_in, 3600);
    let (status, gif) = download(url).await.unwrap();
    assert_eq!(status, 200, "the link works");
    assert_eq!(&gif[..6], b"GIF89a");
    let info = probe_gif(&gif, env.work.path()).await;
    assert_eq!((info.width, info.height), (320, 180), "asked width, source aspect");
    assert_eq!(info.frames, 20, "2 s at 10 fps");
    assert_eq!((link.width, link.height, link.frames), (Some(320), Some(180), Some(20)));
    let item = env.task_item(&task_id).await;
    assert!(
        item.contains_key(attr::CREATED_AT) && item.contains_key(attr::EXPIRES_AT),
        "{item:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn an_s3_source_in_the_input_bucket_and_a_redirect_to_an_allowed_host_both_work() {
    let env = env().await;
    let key = env.source_video().await;
    let s3_url = format!("s3://{}/{key}", env.outputs.get("SourceBucketName"));
    let via_redirect = gif_sources_url(&format!(
        "/redirect?to={}",
        url::form_urlencoded::byte_serialize(env.presigned(&key).await.as_bytes()).collect::<String>()
    ));
    for src_url in [s3_url, via_redirect] {
        let (_, answer) = env.convert_and_wait(small_request(&src_url)).await;
        assert_eq!(answer.status, TaskStatus::Done, "{src_url}: {answer:?}");
        let (_, gif) = download(&answer.gif().unwrap().gif_url).await.unwrap();
        let info = probe_gif(&gif, env.work.path()).await;
        assert_eq!((info.width, info.height, info.frames), (160, 90, 5), "{src_url}");
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn every_error_answer_of_the_api_is_a_status_and_a_named_json_error() {
    let env = env().await;
    let unknown = uuid_v4();
    let cases: Vec<(String, u16, Code)> = vec![
        ("not json at all".into(), 400, Code::BadJson),
        ("[]".into(), 400, Code::BadJson),
        (r#"{"task_id":"x"}"#.into(), 400, Code::MissingAction),
        (r#"{"action":"rm -rf"}"#.into(), 400, Code::UnknownAction),
        (r#"{"action":"convert"}"#.into(), 400, Code::MissingSrcUrl),
        (
            r#"{"action":"convert","src_url":"https://example.com/a.mp4","width":99999}"#.into(),
            400,
            Code::InvalidParameter,
        ),
        (
            r#"{"action":"convert","src_url":"https://example.com/a.mp4","fps":0}"#.into(),
            400,
            Code::InvalidParameter,
        ),
        (
            r#"{"action":"convert","src_url":"s3://not-the-input-bucket/a.mp4"}"#.into(),
            400,
            Code::SourceBucketRefused,
        ),
        (r#"{"action":"get_task_status"}"#.into(), 400, Code::MissingTaskId),
        (
            r#"{"action":"get_task_status","task_id":"nope"}"#.into(),
            400,
            Code::InvalidTaskId,
        ),
        (
            format!(r#"{{"action":"get_task_status","task_id":"{unknown}"}}"#),
            404,
            Code::TaskNotFound,
        ),
    ];
    for (body, status, code) in &cases {
        let (got, answer) = env.api.call(body).await.unwrap();
        let error = api_error(&answer);
        assert_eq!((got, error.code), (*status, *code), "{body}: {answer}");
        assert!(!error.message.is_empty(), "{answer}");
    }
    // The refusal list, as literal addresses and schemes: refused by the API at once.
    for src_url in [
        "http://127.0.0.1/video.mp4",
        "http://[::1]/video.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/video.mp4",
        "http://172.16.0.1/video.mp4",
        "http://192.168.1.1/video.mp4",
        "http://0.0.0.0/video.mp4",
        "http://2130706433/video.mp4",
    ] {
        let (got, answer) = env
            .api
            .call(&json!({"action": "convert", "src_url": src_url}).to_string())
            .await
            .unwrap();
        assert_eq!(
            (got, api_error(&answer).code),
            (400, Code::SourceAddressForbidden),
            "{src_url}: {answer}"
        );
    }
    for src_url in ["file:///etc/passwd", "gopher://example.com:70/_x"] {
        let (got, answer) = env
            .api
            .call(&json!({"action": "convert", "src_url": src_url}).to_string())
            .await
            .unwrap();
        assert_eq!(
            (got, api_error(&answer).code),
            (400, Code::SourceSchemeRefused),
            "{src_url}: {answer}"
        );
    }
    // AWS_IAM: an unsigned request never reaches the function.
    let (got, _) = env.api.call_unsigned(r#"{"action":"get_task_status"}"#).await.unwrap();
    assert_eq!(got, 403);
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn names_and_redirects_that_lead_to_forbidden_addresses_fail_the_task_with_the_reason() {
    let env = env().await;
    let redirect_to = |target: &str| {
        gif_sources_url(&format!(
            "/redirect?to={}",
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        ))
    };
    let cases = [
        ("http://localhost/video.mp4".to_owned(), "resolves to"),
        (redirect_to("http://10.0.0.1/video.mp4"), "redirect 1"),
        (redirect_to("http://169.254.169.254/latest/meta-data/"), "redirect 1"),
        (redirect_to("http://localhost:22/"), "redirect 1"),
    ];
    let tasks = env.convert_each(cases.iter().map(|(src_url, _)| src_url)).await;
    for ((src_url, needle), task_id) in cases.iter().zip(&tasks) {
        let answer = env.api.wait(task_id, WAIT, |_| {}).await.unwrap();
        assert_eq!(
            outcome(&answer),
            (TaskStatus::Failed, Some(Code::SourceAddressForbidden)),
            "{src_url}: {answer:?}"
        );
        assert!(!answer.ready);
        let message = &answer.error().unwrap().message;
        assert!(message.contains(needle), "{src_url}: {message}");
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn the_converter_refuses_the_whole_list_itself_when_the_api_is_bypassed() {
    let env = env().await;
    let cases = [
        ("http://127.0.0.1/video.mp4", Code::SourceAddressForbidden),
        ("http://localhost/video.mp4", Code::SourceAddressForbidden),
        ("http://[::1]/video.mp4", Code::SourceAddressForbidden),
        (
            "http://169.254.169.254/latest/meta-data/iam/",
            Code::SourceAddressForbidden,
        ),
        ("http://10.0.0.1/video.mp4", Code::SourceAddressForbidden),
        ("http://172.16.0.1/video.mp4", Code::SourceAddressForbidden),
        ("http://192.168.1.1/video.mp4", Code::SourceAddressForbidden),
        ("http://0.0.0.0/video.mp4", Code::SourceAddressForbidden),
        ("http://2130706433/video.mp4", Code::SourceAddressForbidden),
        ("http://0x7f.0.0.1/video.mp4", Code::SourceAddressForbidden),
        ("file:///etc/passwd", Code::SourceSchemeRefused),
        ("gopher://example.com:70/_x", Code::SourceSchemeRefused),
    ];
    let mut tasks = Vec::new();
    for (src_url, _) in cases {
        tasks.push(env.queue_job_directly(src_url).await);
    }
    for ((src_url, code), task_id) in cases.iter().zip(&tasks) {
        let answer = env.api.wait(task_id, WAIT, |_| {}).await.unwrap();
        assert_eq!(
            outcome(&answer),
            (TaskStatus::Failed, Some(*code)),
            "{src_url}: {answer:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn oversize_and_non_video_sources_fail_with_their_reasons() {
    let env = env().await;
    // The local deployment caps sources at 20 MB (GifMaxSourceBytes in the Makefile).
    let cases = [
        (
            gif_sources_url("/bytes?size=25000000"),
            Code::SourceTooLarge,
            "declares 25000000",
        ),
        (
            gif_sources_url("/bytes?size=25000000&chunked=1"),
            Code::SourceTooLarge,
            "sent more than",
        ),
        (gif_sources_url("/text"), Code::NotVideo, "not a video"),
        (gif_sources_url("/bytes?size=5000"), Code::NotVideo, "not a video"),
    ];
    let tasks = env.convert_each(cases.iter().map(|(src_url, _, _)| src_url)).await;
    for ((src_url, code, needle), task_id) in cases.iter().zip(&tasks) {
        let answer = env.api.wait(task_id, WAIT, |_| {}).await.unwrap();
        assert_eq!(
            outcome(&answer),
            (TaskStatus::Failed, Some(*code)),
            "{src_url}: {answer:?}"
        );
        assert!(
            answer.error().unwrap().message.contains(needle),
            "{src_url}: {answer:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_redelivered_message_after_done_does_nothing() {
    let env = env().await;
    let key = env.source_video().await;
    let src_url = env.presigned(&key).await;
    let (task_id, answer) = env.convert_and_wait(small_request(&src_url)).await;
    assert_eq!(answer.status, TaskStatus::Done, "{answer:?}");
    let before = env.task_item(&task_id).await;
    let gif_key = format!("gifs/{task_id}.gif");
    let head = |env: &Env| {
        let key = gif_key.clone();
        let s3 = env.clients.s3.clone();
        let bucket = env.outputs.get("OutputBucketName").to_owned();
        async move {
            let head = s3.head_object().bucket(bucket).key(key).send().await.unwrap();
            (head.e_tag, head.last_modified)
        }
    };
    let object_before = head(&env).await;

    // The same job, delivered again (as SQS may, at least once), straight to the deployed
    // converter through the Lambda API, so its answer can be read.
    let job = GifJob {
        version: GIF_JOB_VERSION,
        task_id: task_id.clone(),
        src_url,
        params: SMALL,
    };
    let event = json!({"Records": [{
        "messageId": format!("redelivery-{}", unique_suffix()),
        "receiptHandle": "redelivery",
        "body": serde_json::to_string(&job).unwrap(),
        "attributes": {"ApproximateReceiveCount": "2"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:gif-jobs",
        "awsRegion": "us-east-1"
    }]});
    let response = invoke(
        &env.clients.lambda,
        env.outputs.get("GifConverterFunctionName"),
        event.to_string().as_bytes(),
    )
    .await
    .unwrap()
    .payload;
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "the message is done: {response}"
    );

    let after = env.task_item(&task_id).await;
    for attribute in [
        attr::STATUS,
        attr::RUN_ID,
        attr::UPDATED_AT,
        attr::ATTEMPTS,
        attr::GIF_KEY,
        attr::PROGRESS,
    ] {
        assert_eq!(before.get(attribute), after.get(attribute), "{attribute} changed");
    }
    assert_eq!(head(&env).await, object_before, "the GIF was not made again");
    assert_eq!(env.api.status(&task_id).await.unwrap().status, TaskStatus::Done);
}
