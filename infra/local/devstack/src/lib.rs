//! The local stack seen from outside, as a user (or a test) sees the deployed system: the
//! stack's outputs, a tap on the results topic, sample media made with ffmpeg, and waiting for
//! results. Used by `devstack demo` and by the end-to-end tests in `tests/`.

pub mod clips;
pub mod gif;
pub mod media_checks;
pub mod observe;
pub mod processes;
pub mod runtime_api;
pub mod services;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use shared::contracts::PipelineResult;
use shared::ffmpeg::{ffmpeg_base_args, Deadline, Supervised};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The repository root (this crate lives in `infra/local/devstack`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .expect("repo root exists")
}

/// The deployed stack's outputs, written by `make stack` to `.local/stack-outputs.json`
/// (`sam list stack-outputs --output json`).
#[derive(Debug, Clone)]
pub struct StackOutputs(HashMap<String, String>);

impl StackOutputs {
    pub fn load() -> Result<Self, BoxError> {
        let path = std::env::var_os("STACK_OUTPUTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".local/stack-outputs.json"));
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

/// Clients for the local stack (endpoint and credentials from the environment that
/// `infra/local/stack.sh run` sets).
#[derive(Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// MediaConvert at `AWS_ENDPOINT_URL_MEDIACONVERT` (the local MediaConvert under `stack.sh run`).
    pub mediaconvert: aws_sdk_mediaconvert::Client,
    /// Lambda, for invoking deployed functions as S3 or EventBridge would.
    pub lambda: aws_sdk_lambda::Client,
}

impl Clients {
    pub async fn from_env() -> Self {
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            // Never talk to a real account by accident.
            std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
        }
        for (name, value) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ] {
            if std::env::var_os(name).is_none() {
                std::env::set_var(name, value);
            }
        }
        let sdk = shared::clients::load_sdk_config().await;
        Clients {
            s3: shared::clients::s3_client(&sdk),
            sns: shared::clients::sns_client(&sdk),
            sqs: shared::clients::sqs_client(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            mediaconvert: aws_sdk_mediaconvert::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
        }
    }
}

/// A private SQS queue subscribed (raw delivery) to a topic: how a test or the demo watches
/// what the system publishes, exactly as a user's own subscriber would.
pub struct Tap {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    pub queue_url: String,
    subscription_arn: String,
    /// Messages received but not (yet) asked for: receiving deletes them from the queue, so a
    /// later [`Tap::take_json`] or [`Tap::collect_results`] must still see them here.
    unclaimed: std::sync::Mutex<Vec<serde_json::Value>>,
}

impl Tap {
    pub async fn subscribe(clients: &Clients, topic_arn: &str, name: &str) -> Result<Tap, BoxError> {
        let queue_name = format!("tap-{}-{}", sanitize(name), unique_suffix());
        let queue_url = clients
            .sqs
            .create_queue()
            .queue_name(&queue_name)
            .send()
            .await?
            .queue_url
            .unwrap_or_default();
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?;
        let queue_arn = attributes
            .attributes
            .unwrap_or_default()
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .unwrap_or_default();
        let subscription = clients
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .return_subscription_arn(true)
            .send()
            .await?;
        Ok(Tap {
            sqs: clients.sqs.clone(),
            sns: clients.sns.clone(),
            queue_url,
            subscription_arn: subscription.subscription_arn.unwrap_or_default(),
            unclaimed: Default::default(),
        })
    }

    /// Receives whatever has arrived (up to 10 messages, waiting at most 1 s), deleting it.
    pub async fn poll(&self) -> Result<Vec<serde_json::Value>, BoxError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        let mut bodies = Vec::new();
        for message in received.messages.unwrap_or_default() {
            if std::env::var_os("DEVSTACK_DEBUG").is_some() {
                eprintln!("tap {}: {:?}", self.queue_url, message.body);
            }
            if let Some(body) = &message.body {
                bodies.push(serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.clone())));
            }
            if let Some(handle) = message.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
        Ok(bodies)
    }

    /// Polls once; returns the messages (any JSON) that `wanted` accepts, and keeps the others
    /// for later calls.
    pub async fn take_json(
        &self,
        mut wanted: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<Vec<serde_json::Value>, BoxError> {
        let mut pending: Vec<serde_json::Value> = std::mem::take(&mut *self.unclaimed.lock().unwrap());
        pending.extend(self.poll().await?);
        let (taken, kept): (Vec<_>, Vec<_>) = pending.into_iter().partition(|v| wanted(v));
        self.unclaimed.lock().unwrap().extend(kept);
        Ok(taken)
    }

    /// Collects pipeline results until `done` says the set is complete or `timeout` passes;
    /// `on_tick` is called about once a second with what has arrived so far (progress display).
    pub async fn collect_results(
        &self,
        timeout: Duration,
        mut keep: impl FnMut(&PipelineResult) -> bool,
        mut done: impl FnMut(&[PipelineResult]) -> bool,
        mut on_tick: impl FnMut(&[PipelineResult], Duration),
    ) -> Result<Vec<PipelineResult>, BoxError> {
        let started = Instant::now();
        let mut results = Vec::new();
        let as_result = |body: &serde_json::Value| serde_json::from_value::<PipelineResult>(body.clone()).ok();
        loop {
            let taken = self
                .take_json(|body| as_result(body).is_some_and(|result| keep(&result)))
                .await?;
            results.extend(taken.iter().filter_map(as_result));
            on_tick(&results, started.elapsed());
            if done(&results) {
                return Ok(results);
            }
            if started.elapsed() > timeout {
                return Err(format!("timed out after {timeout:?}; results so far: {results:#?}").into());
            }
        }
    }

    pub async fn close(self) {
        let _ = self
            .sns
            .unsubscribe()
            .subscription_arn(&self.subscription_arn)
            .send()
            .await;
        let _ = self.sqs.delete_queue().queue_url(&self.queue_url).send().await;
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

/// The `rejection_code` attribute a function parks a message in its DLQ with.
pub fn rejection_code(message: &aws_sdk_sqs::types::Message) -> Option<&str> {
    message.message_attributes()?.get("rejection_code")?.string_value()
}

/// A sample video made by ffmpeg's lavfi sources: a test pattern with a running clock, and a
/// tone when `with_audio`.
#[derive(Debug, Clone, Copy)]
pub struct SampleSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub seconds: f64,
    pub with_audio: bool,
}

pub async fn make_sample(spec: SampleSpec, output: &Path) -> Result<(), BoxError> {
    let mut args = ffmpeg_base_args();
    let video = format!(
        "testsrc2=size={}x{}:rate={}:duration={}",
        spec.width, spec.height, spec.fps, spec.seconds
    );
    args.extend(["-f", "lavfi", "-i"].map(Into::into));
    args.push(video.into());
    if spec.with_audio {
        let audio = format!("sine=frequency=440:sample_rate=48000:duration={}", spec.seconds);
        args.extend(["-f", "lavfi", "-i"].map(Into::into));
        args.push(audio.into());
    }
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g"].map(Into::into));
    args.push((spec.fps * 2).to_string().into());
    if spec.with_audio {
        args.extend(["-c:a", "aac", "-b:a", "96k"].map(Into::into));
    }
    args.extend(["-movflags", "+faststart", "-f", "mp4"].map(Into::into));
    args.push(output.into());
    Supervised::new("ffmpeg", Deadline::after(Duration::from_secs(120)))
        .args(args)
        .run()
        .await?;
    Ok(())
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

/// Keys under `prefix` in `bucket`.
pub async fn list_keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>, BoxError> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(page?.contents.unwrap_or_default().into_iter().filter_map(|o| o.key));
    }
    Ok(keys)
}

/// A name unique to this run (tests re-run against a long-lived stack must not collide).
pub fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{}-{:x}", std::process::id(), nanos % 0xffff_ffff)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .take(40)
        .collect()
}

/// A response read whole by [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// One plain HTTP/1.1 request to a loopback service (`url` = `http://127.0.0.1:PORT/path`, the
/// path already percent-encoded), read to the end (`Connection: close`). Enough for the tests of
/// the local services; not a general client.
pub async fn http_request(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw)).await??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, BoxError> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("short chunk")?);
        data = data.get(size + 2..).ok_or("short chunk")?;
    }
}

/// The origin server's address (`ORIGIN_URL`, set by `stack.sh run`; else from the port layout).
pub fn origin_url() -> String {
    std::env::var("ORIGIN_URL").unwrap_or_else(|_| services::url(services::Ports::from_env().origin))
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
