//! The end-to-end harness: the deployed local stack seen from outside, as a user sees it. The
//! stack's outputs, clients and a tap on the results topic (from `stack-clients`), sample media
//! (from `media-fixtures`), messages and events delivered as AWS would deliver them, and waiting
//! for results. Used by the end-to-end tests (`infra/local/e2e`), the demo and the bench.

pub mod clips;
pub mod gif;
pub mod http;
pub mod observe;
pub mod processes;
pub mod results;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shared::ffmpeg::{Deadline, Supervised};

pub use media_fixtures::{checks as media_checks, make_sample, SampleSpec};
pub use stack_clients::{list_keys, unique_suffix, BoxError, Clients, Tap};

/// The repository root (this crate lives in `infra/local/harness`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .expect("repo root exists")
}

/// The rendition profiles the stack deploys, one worker each, smallest first: every data file in
/// `job-templates/renditions/` (the template's worker list is tested to match them).
pub fn rendition_profiles() -> Vec<&'static str> {
    shared::profiles::RenditionProfile::built_in_names()
}

/// The stack output `what` of a profile's worker: `("720p", "DeadLetterQueueUrl")` is
/// `Rendition720DeadLetterQueueUrl`.
pub fn rendition_output(profile: &str, what: &str) -> String {
    format!("Rendition{}{what}", profile.trim_end_matches('p'))
}

/// The stack's state folder: `LOCAL_STATE_DIR` (the test stack's, under `make test`), else
/// `STACK_STATE_DIR` of `infra/local/stack.env`.
pub fn state_dir() -> PathBuf {
    let dir = std::env::var("LOCAL_STATE_DIR")
        .ok()
        .or_else(|| local_services::stack_setting("STACK_STATE_DIR").map(str::to_owned))
        .unwrap_or_else(|| ".local".to_owned());
    repo_root().join(dir)
}

/// Machine-local scratch shared by every stack (`LOCAL_DIR` of `infra/local/stack.env`), e.g.
/// `local_dir().join("demo")`.
pub fn local_dir() -> PathBuf {
    repo_root().join(local_services::stack_setting("LOCAL_DIR").unwrap_or(".local"))
}

/// The deployed stack's outputs, written by `make stack` to `<state dir>/stack-outputs.json`
/// (`sam list stack-outputs --output json`).
#[derive(Debug, Clone)]
pub struct StackOutputs(HashMap<String, String>);

impl StackOutputs {
    pub fn load() -> Result<Self, BoxError> {
        let path = std::env::var_os("STACK_OUTPUTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| state_dir().join("stack-outputs.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (is the local stack deployed? run `make stack`)",
                path.display()
            )
        })?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Output {
            output_key: String,
            output_value: String,
        }
        let outputs: Vec<Output> = serde_json::from_str(&text)?;
        Ok(StackOutputs(
            outputs.into_iter().map(|o| (o.output_key, o.output_value)).collect(),
        ))
    }

    /// An output that may be absent (a stack deployed from an older template).
    pub fn find(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("stack output {name} missing; redeploy with `make stack`"))
    }
}

/// What an end-to-end test starts from: the deployed stack's outputs, clients for it, and a
/// scratch directory removed when the test ends. Panics when the stack is not deployed: such a
/// test has nothing to run against.
pub struct TestEnv {
    pub outputs: StackOutputs,
    pub clients: Clients,
    pub work: tempfile::TempDir,
}

impl TestEnv {
    pub async fn load() -> TestEnv {
        TestEnv {
            outputs: StackOutputs::load().expect("stack outputs (run `make stack`)"),
            clients: Clients::from_env().await,
            work: tempfile::tempdir().expect("a scratch directory"),
        }
    }

    pub fn source_bucket(&self) -> &str {
        self.outputs.get("SourceBucketName")
    }

    /// HeadObject of `key` in the source bucket: its size and ETag, as the notice and events
    /// a test builds by hand must carry them.
    pub async fn head_source(&self, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
        self.clients
            .s3
            .head_object()
            .bucket(self.source_bucket())
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HeadObject s3://{}/{key}: {e}", self.source_bucket()))
    }

    pub fn output_bucket(&self) -> &str {
        self.outputs.get("OutputBucketName")
    }

    /// A tap on the results topic (close it at the end of the test).
    pub async fn results_tap(&self, name: &str) -> Tap {
        Tap::subscribe(&self.clients, self.outputs.get("ResultsTopicArn"), name)
            .await
            .expect("a tap on the results topic")
    }

    /// A sample video in the scratch directory, under a name unique to this run.
    pub async fn sample(&self, spec: SampleSpec) -> PathBuf {
        let path = self.work.path().join(format!("{}.mp4", unique_suffix()));
        make_sample(spec, &path).await.expect("ffmpeg makes the sample");
        path
    }

    /// Downloads `s3://bucket/key` into the scratch directory and probes it with ffprobe.
    pub async fn probe(&self, bucket: &str, key: &str) -> shared::probe::MediaInfo {
        let local = self.work.path().join(format!("probe-{}", unique_suffix()));
        shared::storage::download_to_file(&self.clients.s3, bucket, key, &local)
            .await
            .unwrap_or_else(|e| panic!("downloading s3://{bucket}/{key}: {e}"));
        shared::probe::probe_file(Path::new("ffprobe"), &local, Deadline::after(Duration::from_secs(30)))
            .await
            .unwrap_or_else(|e| panic!("probing s3://{bucket}/{key}: {e}"))
    }
}

/// An execution of the segmented-rendition state machine: its name, status and input.
#[derive(Debug, Clone)]
pub struct SegmentedExecution {
    pub name: String,
    pub status: String,
    pub input: serde_json::Value,
    /// Each Map Run of the execution (its Distributed Map of parts): (items, succeeded, failed).
    pub map_runs: Vec<(i64, i64, i64)>,
}

impl TestEnv {
    /// The executions of the segmented-rendition state machine whose job is the source `key`.
    pub async fn segmented_executions(&self, key: &str) -> Vec<SegmentedExecution> {
        let sfn = &self.clients.sfn;
        let arn = self.outputs.get("SegmentedRenditionStateMachineArn");
        let mut found = Vec::new();
        let mut pages = sfn.list_executions().state_machine_arn(arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.unwrap_or_else(|e| panic!("ListExecutions {arn}: {e}"));
            for execution in page.executions() {
                let described = sfn
                    .describe_execution()
                    .execution_arn(execution.execution_arn())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("DescribeExecution {}: {e}", execution.execution_arn()));
                let input: serde_json::Value =
                    serde_json::from_str(described.input().unwrap_or("null")).unwrap_or_default();
                if input.pointer("/job/source/key").and_then(serde_json::Value::as_str) == Some(key) {
                    found.push(SegmentedExecution {
                        name: execution.name().to_owned(),
                        status: described.status().as_str().to_owned(),
                        input,
                        map_runs: self.map_runs(execution.execution_arn()).await,
                    });
                }
            }
        }
        found
    }

    /// (items, succeeded, failed) of each Map Run of `execution`.
    async fn map_runs(&self, execution: &str) -> Vec<(i64, i64, i64)> {
        let sfn = &self.clients.sfn;
        let runs = sfn
            .list_map_runs()
            .execution_arn(execution)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListMapRuns {execution}: {e}"));
        let mut counts = Vec::new();
        for run in runs.map_runs() {
            let described = sfn
                .describe_map_run()
                .map_run_arn(run.map_run_arn())
                .send()
                .await
                .unwrap_or_else(|e| panic!("DescribeMapRun {}: {e}", run.map_run_arn()));
            let items = described.item_counts();
            counts.push(items.map_or((0, 0, 0), |c| (c.total(), c.succeeded(), c.failed())));
        }
        counts
    }
}

/// Sends `bodies` to a queue in one SendMessageBatch (at most 10), so they can arrive in one
/// Lambda batch.
pub async fn send_batch(sqs: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) -> Result<(), BoxError> {
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(body)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    sqs.send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await?;
    Ok(())
}

/// Messages now in a queue, left in place (received with visibility timeout 0).
pub async fn peek_queue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<Vec<aws_sdk_sqs::types::Message>, BoxError> {
    let mut seen = HashMap::new();
    for _ in 0..3 {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .send()
            .await?;
        for message in received.messages.unwrap_or_default() {
            seen.insert(message.message_id.clone().unwrap_or_default(), message);
        }
    }
    Ok(seen.into_values().collect())
}

/// The messages now in a queue whose body mentions `needle` (a test run's suffix, a key), left
/// in place.
pub async fn peek_queue_mentioning(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    needle: &str,
) -> Result<Vec<aws_sdk_sqs::types::Message>, BoxError> {
    let mut messages = peek_queue(sqs, queue_url).await?;
    messages.retain(|m| m.body().is_some_and(|b| b.contains(needle)));
    Ok(messages)
}

/// The `rejection_code` attribute a function parks a message in its DLQ with (`None` also when
/// it names no code: the caller compares it with the code it expects).
pub fn rejection_code(message: &aws_sdk_sqs::types::Message) -> Option<shared::Code> {
    message
        .message_attributes()?
        .get(shared::sqs::REJECTION_CODE)?
        .string_value()?
        .parse()
        .ok()
}

/// The notice the upload publisher would send for `s3://bucket/key`, for delivering a message
/// straight to a worker's queue (duplicates, batches, benchmarks).
pub fn upload_notice(bucket: &str, key: &str, size: u64, etag: Option<String>) -> shared::contracts::UploadNotice {
    shared::contracts::UploadNotice {
        version: shared::contracts::CONTRACT_VERSION,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size,
        etag,
        version_id: None,
        sequencer: None,
        event_time: "2026-11-21T09:00:00.000Z".into(),
    }
}

/// An `ObjectCreated:Put` event for one object, as S3 sends it (the key form-encoded, as S3
/// writes it), for delivering an S3 event to a function directly (duplicates, malformed events).
pub fn s3_put_event(bucket: &str, key: &str, size: u64, etag: &str, sequencer: &str) -> serde_json::Value {
    let encoded_key: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T09:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "DEVSTACK", "x-amz-id-2": "DEVSTACK"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "devstack",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded_key, "size": size, "eTag": etag, "sequencer": sequencer}}
    }]})
}

/// Invokes a deployed function asynchronously (`Event`), as S3 and EventBridge do.
pub async fn invoke_async(clients: &Clients, function_name: &str, payload: &serde_json::Value) -> Result<(), BoxError> {
    clients
        .lambda
        .invoke()
        .function_name(function_name)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(payload)?))
        .send()
        .await?;
    Ok(())
}

/// Uploads a local file with a plain PutObject, as a user's client would.
pub async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, file: &Path) -> Result<(), BoxError> {
    let body = aws_sdk_s3::primitives::ByteStream::from_path(file).await?;
    s3.put_object().bucket(bucket).key(key).body(body).send().await?;
    Ok(())
}

pub async fn upload_bytes(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), BoxError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(bytes.into())
        .send()
        .await?;
    Ok(())
}

/// The origin server's address (`ORIGIN_URL`, set by `stack.sh run`; else from the port layout).
pub fn origin_url() -> String {
    std::env::var("ORIGIN_URL").unwrap_or_else(|_| local_services::url(local_services::Ports::from_env().origin))
}

/// Loads `url` in headless Chromium (Debian's `chromium`, a fresh profile) and returns the DOM
/// after the page's scripts ran for `budget` of virtual time.
pub async fn chromium_dom(url: &str, budget: Duration) -> Result<String, BoxError> {
    let profile = tempfile::tempdir()?;
    let output = Supervised::new("chromium", Deadline::after(Duration::from_secs(120)))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .args(["--dump-dom", url])
        .run()
        .await?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
