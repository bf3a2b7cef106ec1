//! The bad-input catalogue: every function of the suite, fed what it should never choke on —
//! malformed and empty events, queue bodies that are not JSON or not the contract, wrong types,
//! missing fields, huge bodies; S3 keys with spaces, `+`, `%`, unicode, option-like names,
//! shell metacharacters, names too long for their outputs; zero-byte, truncated, non-video and
//! audio-only files and a container that lies about its codec; impossible time ranges; hostile
//! URLs. Each case names the answer it must get (a named rejection, a DLQ entry with its
//! `rejection_code`, a task status with its reason, an HTTP status with a named error, or the
//! output at the right key for odd-but-valid input), and every queue-driven case travels in a
//! batch with a good message that must be processed too.
//!
//! It ends with `bad-input catalogue: N cases, C crashes, D silent drops` and a table, where
//! * a crash is an invocation that ended in a function error that is not one of the suite's
//!   named errors (`rejected.CODE`, …) or in a dead process: seen in the Invoke answer
//!   (`X-Amz-Function-Error`), the `AWS/Lambda` `Errors` metric (more errors than the named
//!   ones this test provoked), the functions' logs (panics, unreadable payloads, timeouts) and
//!   the on-failure queues of the functions S3 invokes asynchronously (ministack's EventBridge
//!   invokes once and keeps no failure, so there the function's log is the record);
//! * a silent drop is a case that got no answer at all within its time.
//!
//! `#[ignore]`d like every test that needs the deployed stack; `make test` runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use harness::clips::{record, request_json, Recorder};
use harness::gif::{put_queued_task, GifApi};
use harness::observe::{crash_lines, find_in_queue, invoke, lambda_errors, lambda_throttles, log_lines};
use harness::{
    rendition_output, rendition_profiles, send_batch, unique_suffix, upload, upload_bytes, SampleSpec, Tap, TestEnv,
};
use serde_json::{json, Value};
use shared::contracts::clip::{ClipResult, ClipStatus};
use shared::contracts::gif::{ApiErrorAnswer, TaskStatus};
use shared::contracts::{Job, PipelineResult, ResultStatus};
use shared::sqs::REJECTION_CODE;
use shared::{Code, ErrorKind};

/// How long a case may take to be answered before it counts as a silent drop.
const WAIT: Duration = Duration::from_secs(150);

const TINY: SampleSpec = SampleSpec {
    width: 320,
    height: 240,
    fps: 15,
    seconds: 1.0,
    with_audio: true,
};

/// One line of the catalogue.
#[derive(Debug, Clone)]
struct Row {
    function: &'static str,
    case: String,
    expected: String,
    /// `None`: no answer at all (a silent drop).
    got: Option<String>,
    /// A good message sent beside the bad ones: not counted as a case, but must succeed.
    control: bool,
}

#[derive(Default)]
struct Catalogue {
    rows: Mutex<Vec<Row>>,
    /// Function errors with one of the suite's named error types, provoked on purpose by
    /// direct invokes (by function name), so the `Errors` metric can be checked against them.
    named_errors: Mutex<BTreeMap<String, f64>>,
    /// Crashes seen directly (an invoke answered with an unnamed error type).
    crashes: Mutex<Vec<String>>,
}

impl Catalogue {
    fn add(&self, function: &'static str, case: impl Into<String>, expected: impl Into<String>, got: Option<String>) {
        self.push(function, case, expected, got, false);
    }

    fn control(
        &self,
        function: &'static str,
        case: impl Into<String>,
        expected: impl Into<String>,
        got: Option<String>,
    ) {
        self.push(function, case, expected, got, true);
    }

    fn push(
        &self,
        function: &'static str,
        case: impl Into<String>,
        expected: impl Into<String>,
        got: Option<String>,
        control: bool,
    ) {
        self.rows.lock().unwrap().push(Row {
            function,
            case: case.into(),
            expected: expected.into(),
            got,
            control,
        });
    }

    /// Invokes `function_name` with `payload` and describes the answer: `fn error TYPE` or
    /// `ok <payload>`. Unnamed error types are crashes.
    async fn invoke(
        &self,
        lambda: &aws_sdk_lambda::Client,
        function_name: &str,
        payload: &[u8],
    ) -> Option<(String, Value)> {
        let answer = match invoke(lambda, function_name, payload).await {
            Ok(answer) => answer,
            Err(e) => return Some((format!("invoke refused: {e}"), Value::Null)),
        };
        match answer.error_type() {
            Some(error_type) => {
                if is_named_error(error_type) {
                    *self
                        .named_errors
                        .lock()
                        .unwrap()
                        .entry(function_name.to_owned())
                        .or_default() += 1.0;
                } else {
                    self.crashes
                        .lock()
                        .unwrap()
                        .push(format!("{function_name}: {error_type}: {}", answer.payload));
                }
                Some((format!("fn error {error_type}"), answer.payload))
            }
            None => Some(("ok".to_owned(), answer.payload)),
        }
    }
}

/// `rejected.MALFORMED_EVENT`, `failed.X`, `retryable.X`: the suite's `Diagnostic` types (an
/// [`ErrorKind`] and a [`Code`]).
fn is_named_error(error_type: &str) -> bool {
    error_type
        .split_once('.')
        .is_some_and(|(kind, code)| kind.parse::<ErrorKind>().is_ok() && code.parse::<Code>().is_ok())
}

// How answers read in the catalogue's "expected" and "got" columns. Every status and code in
// them is spelled by its enum.

/// `rejected CODE`: a rejected pipeline result, after whom it is about.
fn rejected(code: Code) -> String {
    format!("{} {code}", ResultStatus::Rejected)
}

/// `failed CODE`: a failed pipeline result, after whom it is about.
fn failed(code: Code) -> String {
    format!("{} {code}", ResultStatus::Failed)
}

/// `WHO OUTCOME`: `upload rejected NOT_VIDEO`, `720p available`, `mediaconvert available`.
fn about(who: impl std::fmt::Display, outcome: impl std::fmt::Display) -> String {
    format!("{who} {outcome}")
}

/// `fn error rejected.CODE`: an invocation answered with the suite's named error.
fn fn_error(kind: ErrorKind, code: Code) -> String {
    format!("fn error {kind}.{code}")
}

/// `dlq CODE`: a message parked in a dead-letter queue with its `rejection_code`.
fn dlq(code: impl std::fmt::Display) -> String {
    format!("dlq {code}")
}

/// `STATUS CODE` (`STATUS` alone without a code): a clip result or a GIF task's final answer.
fn status_and_code(status: impl std::fmt::Display, code: Option<Code>) -> String {
    match code {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}

/// A GIF task's final status and, when it failed, its code.
type TaskEnd = (TaskStatus, Option<Code>);

/// `HTTP-STATUS CODE`: an error answer of the GIF API.
fn http_error(status: u16, code: Code) -> String {
    format!("{status} {code}")
}

/// Whether `message` is a pipeline result that `wanted` accepts.
fn is_pipeline_result(message: &Value, wanted: impl Fn(&PipelineResult) -> bool) -> bool {
    serde_json::from_value::<PipelineResult>(message.clone()).is_ok_and(|result| wanted(&result))
}

/// Everything one run shares: the stack, a tap on the results topic, the run's unique name.
struct Run {
    env: TestEnv,
    tap: Tap,
    run: String,
    catalogue: Catalogue,
    dynamodb: aws_sdk_dynamodb::Client,
    api: GifApi,
}

impl Run {
    fn out(&self, name: &str) -> String {
        self.env.outputs.get(name).to_owned()
    }

    /// A place in the source bucket no notification watches (for objects handed to functions
    /// directly).
    fn quiet_key(&self, name: &str) -> String {
        format!("bad-inputs/{}/{name}", self.run)
    }

    /// Takes the results-topic messages that `want` accepts until `enough` or [`WAIT`].
    async fn answers(&self, want: impl Fn(&Value) -> bool, enough: usize) -> Vec<Value> {
        match self.tap.wait_for(WAIT, want, |got| got.len() >= enough).await {
            Ok(waited) => waited.values,
            Err(e) => panic!("the results tap failed: {e}"),
        }
    }

    /// Pipeline results for `key` (of any job), `enough` of them.
    async fn results_for_key(&self, key: &str, enough: usize) -> Vec<Value> {
        self.answers(|v| v["source"]["key"] == key, enough).await
    }

    async fn sample(&self, spec: SampleSpec) -> PathBuf {
        self.env.sample(spec).await
    }
}

/// `480p available, 720p available, 1080p available` / `upload rejected NOT_VIDEO`: pipeline results in a
/// stable order; an `available` whose output is not at `expected_output(profile)` says where.
fn describe_results(results: &[Value], expected_output: impl Fn(&str) -> String) -> Option<String> {
    if results.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = results
        .iter()
        .map(|message| {
            let Ok(r) = serde_json::from_value::<PipelineResult>(message.clone()) else {
                return format!("not a pipeline result: {message}");
            };
            let who = match (r.job, &r.profile) {
                (Job::Rendition, Some(profile)) => profile.clone(),
                (job, _) => job.to_string(),
            };
            if r.status == ResultStatus::Available {
                let at = match (&r.mediaconvert, &r.output) {
                    (Some(job), _) if r.job == Job::Mediaconvert => {
                        job.outputs.iter().map(|o| o.key.as_str()).collect::<Vec<_>>().join(" ")
                    }
                    (_, Some(output)) => output.key.clone(),
                    _ => String::new(),
                };
                if at == expected_output(&who) {
                    about(who, r.status)
                } else {
                    format!("{who} {} at {at}", r.status)
                }
            } else {
                let code = r.reason.as_ref().map_or("?", |reason| reason.code.as_str());
                format!("{who} {} {code}", r.status)
            }
        })
        .collect();
    parts.sort_by_key(|p| (p.len(), p.clone()));
    Some(parts.join(", "))
}

/// One `<profile> <outcome>` per deployed profile, in [`describe_results`]'s order.
fn renditions(outcome: impl std::fmt::Display) -> String {
    rendition_profiles()
        .iter()
        .map(|profile| about(profile, &outcome))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn ffmpeg(args: &[&str]) {
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .status()
        .await
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// One second of a lavfi `source`, encoded with `codec` into `format`; the file's bytes.
async fn encoded(dir: &Path, source: &str, codec: &[&str], format: &str) -> Vec<u8> {
    let path = dir.join(format!("{format}-{}", unique_suffix()));
    let out = path.to_str().unwrap();
    let mut args = vec!["-f", "lavfi", "-i", source];
    args.extend_from_slice(codec);
    args.extend(["-f", format, out]);
    ffmpeg(&args).await;
    std::fs::read(path).unwrap()
}

const H264: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"];
const TEST_PATTERN: &str = "testsrc2=size=320x240:rate=15:duration=1";

/// An AAC-only MP4 (no video stream).
async fn audio_only(dir: &Path) -> Vec<u8> {
    encoded(dir, "sine=frequency=440:duration=1", &["-c:a", "aac"], "mp4").await
}

/// A Matroska file (named `.mp4` by its uploader).
async fn matroska(dir: &Path) -> Vec<u8> {
    encoded(dir, TEST_PATTERN, H264, "matroska").await
}

/// An HLS playlist whose one segment is a video elsewhere in the source bucket, outside the
/// upload prefixes, at the stack's plain HTTP address (the emulator does not check signatures).
/// Unfenced, the worker's probe through the presigned URL followed it (checked by hand with
/// ffprobe; a playlist read from a local file may only name local files), and a long one would
/// be rendered by the segment tasks, which read through URLs too: request forgery from inside
/// the functions. Fenced, it is not a container that may be read.
async fn playlist_reaching_out(r: &Run) -> Vec<u8> {
    let video = encoded(r.env.work.path(), TEST_PATTERN, H264, "mpegts").await;
    let key = format!("private/bad-{}/elsewhere.ts", r.run);
    let bucket = r.out("SourceBucketName");
    upload_bytes(&r.env.clients.s3, &bucket, &key, video).await.unwrap();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the stack's endpoint (infra/local/stack.sh run)");
    hls_playlist(&format!("{endpoint}/{bucket}/{key}"))
}

/// An HLS playlist of one 1-second segment at `segment` (a URL or a path).
fn hls_playlist(segment: &str) -> Vec<u8> {
    format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{segment}\n#EXT-X-ENDLIST\n").into_bytes()
}

/// An HLS playlist whose one segment is a video on this machine's disk, where the local
/// MediaConvert stand-in runs. Unfenced, the stand-in read it (ffmpeg lets a playlist read from a
/// local file name local files) and rendered it `available`: a hostile upload copying a local
/// file into an output. Fenced, like the functions, it is not a container that may be read.
async fn playlist_naming_a_local_file(dir: &Path) -> Vec<u8> {
    let video = dir.join(format!("on-disk-{}.ts", unique_suffix()));
    std::fs::write(&video, encoded(dir, TEST_PATTERN, H264, "mpegts").await).unwrap();
    hls_playlist(&video.display().to_string())
}

/// An H.264 MP4 as cameras write it: the index (`moov`) at the end, after the media data.
async fn index_last_mp4(dir: &Path) -> Vec<u8> {
    encoded(dir, TEST_PATTERN, H264, "mp4").await
}

/// The same MP4 whose sample description says HEVC (`avc1` in `stsd` patched to `hvc1`).
fn lying_codec(mp4: &[u8]) -> Vec<u8> {
    let mut bytes = mp4.to_vec();
    let stsd = bytes
        .windows(4)
        .position(|w| w == b"stsd")
        .expect("a sample description");
    let at = stsd
        + bytes[stsd..]
            .windows(4)
            .position(|w| w == b"avc1")
            .expect("an avc1 sample entry");
    bytes[at..at + 4].copy_from_slice(b"hvc1");
    bytes
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ------------------------------------------------------------------ upload publisher + renditions

/// Real S3 uploads under `uploads/`: odd but valid names are rendered at the right key; what
/// cannot be rendered gets its named rejection.
async fn uploads(r: &Run) {
    let good = std::fs::read(r.sample(TINY).await).unwrap();
    let audio = audio_only(r.env.work.path()).await;
    let mkv = matroska(r.env.work.path()).await;
    let plain = index_last_mp4(r.env.work.path()).await;
    let prefix = format!("uploads/bad-{}/", r.run);
    let playlist = playlist_reaching_out(r).await;
    let long_name = format!("{}.mp4", "L".repeat(1010 - prefix.len() - 4));
    let cases: Vec<(&str, String, Vec<u8>, String)> = vec![
        (
            "key with spaces",
            "my holiday clip.mp4".into(),
            good.clone(),
            renditions(ResultStatus::Available),
        ),
        (
            "key with +",
            "a+b+c.mp4".into(),
            good.clone(),
            renditions(ResultStatus::Available),
        ),
        (
            "key with %",
            "100% done %2B %zz.mp4".into(),
            good.clone(),
            renditions(ResultStatus::Available),
        ),
        (
            "key with unicode",
            "café 🎬 日本語.mp4".into(),
            good.clone(),
            renditions(ResultStatus::Available),
        ),
        (
            "key like options",
            "-i/--x -y.mp4".into(),
            good.clone(),
            renditions(ResultStatus::Available),
        ),
        (
            "key with shell metacharacters",
            "$(touch pwned); `id` | & > 'q' \"d\" \\ *?.mp4".into(),
            good.clone(),
            renditions(ResultStatus::Available),
        ),
        (
            "key too long for its outputs",
            long_name,
            good.clone(),
            renditions(rejected(Code::KeyTooLong)),
        ),
        (
            "zero-byte .mp4",
            "empty.mp4".into(),
            Vec::new(),
            about(Job::Upload, rejected(Code::EmptyObject)),
        ),
        (
            "truncated .mp4",
            "truncated.mp4".into(),
            plain[..plain.len() * 2 / 3].to_vec(),
            renditions(rejected(Code::CorruptInput)),
        ),
        (
            "text named .mp4",
            "notes.mp4".into(),
            b"just some text\n".repeat(200),
            renditions(rejected(Code::CorruptInput)),
        ),
        (
            "HLS playlist named .mp4, naming another object",
            "playlist.mp4".into(),
            playlist,
            renditions(rejected(Code::CorruptInput)),
        ),
        (
            "audio-only .mp4",
            "song.mp4".into(),
            audio,
            renditions(rejected(Code::NotVideo)),
        ),
        (
            "container lies about codec",
            "liar.mp4".into(),
            lying_codec(&plain),
            renditions(rejected(Code::CorruptInput)),
        ),
        (
            "Matroska named .mp4",
            "really-mkv.mp4".into(),
            mkv,
            renditions(ResultStatus::Available),
        ),
        (
            "not a video extension",
            "notes.txt".into(),
            b"text".to_vec(),
            about(Job::Upload, rejected(Code::NotVideo)),
        ),
        (
            "no extension",
            "README".into(),
            good.clone(),
            about(Job::Upload, rejected(Code::NotVideo)),
        ),
    ];
    let bucket = r.out("SourceBucketName");
    let mut keys = Vec::new();
    for (_, name, bytes, _) in &cases {
        let key = format!("{prefix}{name}");
        upload_bytes(&r.env.clients.s3, &bucket, &key, bytes.clone())
            .await
            .unwrap_or_else(|e| panic!("uploading {key:?}: {e}"));
        keys.push(key);
    }
    let waits = cases.iter().zip(&keys).map(|((case, _, _, expected), key)| async move {
        let enough = if expected.starts_with(rendition_profiles()[0]) {
            rendition_profiles().len()
        } else {
            1
        };
        let results = r.results_for_key(key, enough).await;
        let got = describe_results(&results, |profile| format!("renditions/{key}/{profile}.mp4"));
        r.catalogue
            .add("upload-publisher+rendition", *case, expected.clone(), got);
    });
    futures::future::join_all(waits).await;
}

/// Direct invokes of the upload publisher with events S3 never sends.
async fn publisher_events(r: &Run) {
    let function = r.out("UploadPublisherFunctionName");
    for (case, payload) in [
        ("empty event {}", "{}".to_owned()),
        ("event that is a JSON string", "\"hello\"".to_owned()),
        ("Records not an array", r#"{"Records":"nope"}"#.to_owned()),
    ] {
        let got = r
            .catalogue
            .invoke(&r.env.clients.lambda, &function, payload.as_bytes())
            .await
            .map(|(g, _)| g);
        r.catalogue.add(
            "upload-publisher",
            case,
            fn_error(ErrorKind::Rejected, Code::MalformedEvent),
            got,
        );
    }

    // One event, three records: a malformed one, one whose key is not UTF-8, and a good one
    // (an object outside the watched prefix, so only this event announces it).
    let bucket = r.out("SourceBucketName");
    let good_key = r.quiet_key("invoked good.mp4");
    upload(&r.env.clients.s3, &bucket, &good_key, &r.sample(TINY).await)
        .await
        .unwrap();
    let bad_utf8_key = r.quiet_key("%FF%FE.mp4");
    let huge_key = format!("{}{}.mp4", r.quiet_key("huge-"), "k".repeat(300_000));
    let huge_malformed_key = format!("{}{}.mp4", r.quiet_key("huge-malformed-"), "k".repeat(300_000));
    // The record as S3 writes it (key form-encoded).
    let record = |key: &str| {
        json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-21T09:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "bad-inputs",
                   "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"},
                              "arn": format!("arn:aws:s3:::{bucket}")},
                   "object": {"key": key, "size": 1000, "eTag": "0123", "sequencer": "01"}}
        })
    };
    let event = json!({"Records": [
        {"eventName": "ObjectCreated:Put", "s3": 5},
        {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": huge_malformed_key}}},
        record(&bad_utf8_key),
        record(&huge_key),
        record(&good_key.replace(' ', "+")),
    ]});
    let answer = r
        .catalogue
        .invoke(&r.env.clients.lambda, &function, event.to_string().as_bytes())
        .await;
    let summary = answer.as_ref().map(|(g, p)| format!("{g} {p}"));
    r.catalogue.add(
        "upload-publisher",
        "malformed record beside good ones",
        r#"ok {"published":1,"rejected":4,"skipped":0}"#,
        summary,
    );
    let huge_malformed_prefix = r.quiet_key("huge-malformed-");
    let (bad_utf8, huge_malformed, huge, good) = tokio::join!(
        r.results_for_key(&bad_utf8_key, 1),
        r.answers(
            |v| is_pipeline_result(v, |result| {
                result.job == Job::Upload && result.source.key.starts_with(&huge_malformed_prefix)
            }),
            1
        ),
        r.answers(
            |v| is_pipeline_result(v, |result| {
                result
                    .reason
                    .as_ref()
                    .is_some_and(|reason| reason.code == Code::KeyTooLong)
                    && result.job == Job::Upload
                    && result.source.key.contains(&r.run)
            }),
            1
        ),
        r.results_for_key(&good_key, rendition_profiles().len()),
    );
    r.catalogue.add(
        "upload-publisher",
        "key not UTF-8 once decoded",
        about(Job::Upload, rejected(Code::MalformedEvent)),
        describe_results(&bad_utf8, |_| String::new()),
    );
    r.catalogue.add(
        "upload-publisher",
        "malformed record with a 300 KB key",
        about(Job::Upload, rejected(Code::MalformedEvent)),
        describe_results(&huge_malformed, |_| String::new()),
    );
    r.catalogue.add(
        "upload-publisher",
        "300 KB key in the event",
        about(Job::Upload, rejected(Code::KeyTooLong)),
        describe_results(&huge, |_| String::new()),
    );
    r.catalogue.control(
        "upload-publisher",
        "good record of that event",
        renditions(ResultStatus::Available),
        describe_results(&good, |p| format!("renditions/{good_key}/{p}.mp4")),
    );
}

// ------------------------------------------------------------------ rendition worker (SQS)

async fn rendition_batch(r: &Run) {
    let bucket = r.out("SourceBucketName");
    let good_key = r.quiet_key("batch good.mp4");
    upload(&r.env.clients.s3, &bucket, &good_key, &r.sample(TINY).await)
        .await
        .unwrap();
    let id = |n: &str| format!("{}-{n}", r.run);
    let notice = |key: &str| serde_json::to_string(&harness::upload_notice(&bucket, key, 1000, None)).unwrap();
    let missing_key = r.quiet_key("never uploaded.mp4");
    let dlq_cases: Vec<(&str, String, String)> = vec![
        ("body not JSON", format!("this is not json {}", id("c1")), id("c1")),
        ("body a JSON array", json!([id("c2"), 1, 2]).to_string(), id("c2")),
        (
            "wrong types",
            json!({"version": 1, "bucket": 5, "key": [id("c3")], "size": "big", "event_time": 7}).to_string(),
            id("c3"),
        ),
        ("missing fields", json!({"key": id("c4")}).to_string(), id("c4")),
        (
            "150 KB body",
            json!({"key": id("c5"), "pad": "x".repeat(150_000)}).to_string(),
            id("c5"),
        ),
        (
            "SNS envelope around non-JSON",
            json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:000000000000:uploads",
                   "Message": format!("not json {}", id("c6"))})
            .to_string(),
            id("c6"),
        ),
    ];
    let mut bodies: Vec<String> = dlq_cases.iter().map(|(_, body, _)| body.clone()).collect();
    bodies.push(notice(&missing_key));
    bodies.push(notice(&good_key));
    send_batch(&r.env.clients.sqs, &r.out("Rendition720QueueUrl"), &bodies)
        .await
        .unwrap();

    let needles: Vec<String> = dlq_cases.iter().map(|(_, _, n)| n.clone()).collect();
    let dlq_url = r.out("Rendition720DeadLetterQueueUrl");
    let (found, missing, good) = tokio::join!(
        find_in_queue(&r.env.clients.sqs, &dlq_url, &needles, WAIT),
        r.results_for_key(&missing_key, 1),
        r.results_for_key(&good_key, 1),
    );
    let found = found.unwrap();
    for (case, _, needle) in &dlq_cases {
        let got = found.get(needle).map(|f| {
            dlq(f
                .attributes
                .get(REJECTION_CODE)
                .map(String::as_str)
                .unwrap_or("(no code)"))
        });
        r.catalogue
            .add("rendition-720p", *case, dlq(Code::MalformedMessage), got);
    }
    r.catalogue.add(
        "rendition-720p",
        "notice for a missing object",
        about("720p", rejected(Code::SourceMissing)),
        describe_results(&missing, |_| String::new()),
    );
    r.catalogue.control(
        "rendition-720p",
        "good notice in the same batch",
        about("720p", ResultStatus::Available),
        describe_results(&good, |p| format!("renditions/{good_key}/{p}.mp4")),
    );

    // An empty batch, invoked directly: answered, nothing to retry.
    let function = r.out("Rendition1080FunctionName");
    let got = r
        .catalogue
        .invoke(&r.env.clients.lambda, &function, br#"{"Records":[]}"#)
        .await
        .map(|(g, p)| format!("{g} {p}"));
    r.catalogue.add(
        "rendition-1080p",
        "empty SQS batch",
        r#"ok {"batchItemFailures":[]}"#,
        got,
    );
}

// ------------------------------------------------------------------ clip trimmer (SQS)

async fn clip_batch(r: &Run) {
    let camera_id = format!("cam-bad-{}", r.run);
    let alias = format!("bad-{}", r.run);
    let start = (now_ms() / 1000 - 300) * 1000;
    record(
        &r.env.clients,
        &r.out("RecordingsBucketName"),
        &camera_id,
        &alias,
        Recorder {
            width: 320,
            height: 240,
            fps: 15,
            gop_seconds: 1,
            seconds_each: 4,
            count: 1,
            start_ms: start,
            preset: "ultrafast",
        },
        &r.env.work.path().join("recordings"),
    )
    .await
    .unwrap();
    let id = |n: &str| format!("{n}-{}", r.run);
    // (case, body, clip id to match on the results topic (None: only the DLQ can say), expected)
    let invalid = status_and_code(ClipStatus::Invalid, Some(Code::ClipInvalid));
    let cases: Vec<(&str, String, Option<String>, String)> = vec![
        (
            "body not JSON",
            format!("<clip>{}</clip>", id("d1")),
            None,
            dlq(Code::ClipInvalid),
        ),
        (
            "wrong types",
            format!(
                r#"{{"clipId":"{}","cameraId":5,"startTimestampInMs":"yesterday"}}"#,
                id("d2")
            ),
            Some(id("d2")),
            invalid.clone(),
        ),
        (
            "end before start",
            request_json(&id("d3"), &camera_id, start + 3_000, start + 1_000),
            Some(id("d3")),
            invalid.clone(),
        ),
        (
            "zero-length range",
            request_json(&id("d4"), &camera_id, start + 1_000, start + 1_000),
            Some(id("d4")),
            invalid.clone(),
        ),
        (
            "start before 1970",
            request_json(&id("d5"), &camera_id, -5_000, start),
            Some(id("d5")),
            invalid.clone(),
        ),
        (
            "range longer than allowed",
            request_json(&id("d6"), &camera_id, start, start + 601_000),
            Some(id("d6")),
            invalid.clone(),
        ),
        (
            "option-like camera id",
            request_json(&id("d7"), "--camera=-i", start, start + 1_000),
            Some(id("d7")),
            invalid.clone(),
        ),
        (
            "timestamps beyond i64",
            format!(
                r#"{{"clipId":"{}","cameraId":"{camera_id}","startTimestampInMs":1e300,"endTimestampInMs":99999999999999999999999}}"#,
                id("d8")
            ),
            Some(id("d8")),
            invalid.clone(),
        ),
        (
            "Python dict with True/None",
            format!("{{'clipId': '{}', 'cameraId': None, 'retry': True}}", id("d9")),
            None,
            dlq(Code::ClipInvalid),
        ),
    ];
    let good_id = id("good");
    let mut bodies: Vec<String> = cases.iter().map(|(_, body, _, _)| body.clone()).collect();
    bodies.push(request_json(&good_id, &camera_id, start + 1_000, start + 2_000));
    send_batch(&r.env.clients.sqs, &r.out("ClipRequestsQueueUrl"), &bodies)
        .await
        .unwrap();

    // The first final answer about the clip (a message about it that is no clip result is one
    // too, shown as such).
    let clip_answer = |clip_id: String| async move {
        let results = r
            .answers(
                |v| {
                    v["clipId"] == clip_id.as_str()
                        && serde_json::from_value::<ClipResult>(v.clone())
                            .map_or(true, |result| result.status != ClipStatus::Pending)
                },
                1,
            )
            .await;
        results
            .first()
            .map(|v| match serde_json::from_value::<ClipResult>(v.clone()) {
                Ok(result) => status_and_code(result.status, result.code),
                Err(_) => format!("not a clip result: {v}"),
            })
    };
    let dlq_needles: Vec<String> = vec![id("d1"), id("d9")];
    let dlq_url = r.out("ClipRequestsDeadLetterQueueUrl");
    let (found, answers, good) = tokio::join!(
        find_in_queue(&r.env.clients.sqs, &dlq_url, &dlq_needles, WAIT),
        futures::future::join_all(cases.iter().map(|(_, _, clip_id, _)| {
            let clip_id = clip_id.clone();
            async move {
                match clip_id {
                    Some(clip_id) => clip_answer(clip_id).await,
                    None => None,
                }
            }
        })),
        clip_answer(good_id.clone()),
    );
    let found = found.unwrap();
    for ((case, body, _, expected), answer) in cases.iter().zip(answers) {
        let got = if expected.starts_with(&dlq("")) {
            found
                .iter()
                .find(|(needle, _)| body.contains(needle.as_str()))
                .map(|(_, f)| dlq(f.attributes.get(REJECTION_CODE).map(String::as_str).unwrap_or("")))
        } else {
            answer
        };
        r.catalogue.add("clip-trimmer", *case, expected.clone(), got);
    }
    r.catalogue.control(
        "clip-trimmer",
        "good request in the same batch",
        status_and_code(ClipStatus::Available, None),
        good,
    );
}

// ------------------------------------------------------------------ GIF converter (SQS)

async fn gif_batch(r: &Run) {
    let bucket = r.out("SourceBucketName");
    let video_key = r.quiet_key("gif source.bin");
    upload(&r.env.clients.s3, &bucket, &video_key, &r.sample(TINY).await)
        .await
        .unwrap();
    let audio_key = r.quiet_key("gif audio.bin");
    upload_bytes(
        &r.env.clients.s3,
        &bucket,
        &audio_key,
        audio_only(r.env.work.path()).await,
    )
    .await
    .unwrap();
    let s3_url = |key: &str| format!("s3://{bucket}/{key}");
    let job = |task_id: &str, src_url: &str, version: u32, start: f64| {
        json!({"version": version, "task_id": task_id, "src_url": src_url,
               "start_secs": start, "duration_secs": 1.0, "width": 160, "fps": 5})
        .to_string()
    };
    let id = |n: &str| format!("{}-{n}", r.run);
    let dlq_cases: Vec<(&str, String, String, String)> = {
        let unknown_task = uuid::Uuid::new_v4().to_string();
        vec![
            (
                "body not JSON",
                format!("{{not json {}", id("e1")),
                id("e1"),
                dlq(Code::MalformedMessage),
            ),
            (
                "task id a path",
                job(&format!("../../{}", id("e2")), "https://example.com/a.mp4", 1, 0.0),
                id("e2"),
                dlq(Code::MalformedMessage),
            ),
            (
                "wrong types",
                json!({"version": "one", "task_id": 5, "src_url": [id("e3")]}).to_string(),
                id("e3"),
                dlq(Code::MalformedMessage),
            ),
            (
                "job for a task that does not exist",
                job(&unknown_task, &s3_url(&video_key), 1, 0.0),
                unknown_task.clone(),
                dlq(Code::TaskNotFound),
            ),
        ]
    };
    // (case, job, task id, how the task ends)
    let mut task_cases: Vec<(&str, String, String, TaskEnd)> = Vec::new();
    let task_failed = |code: Code| (TaskStatus::Failed, Some(code));
    for (case, src_url, version, start, expected) in [
        (
            "file:// source",
            "file:///etc/passwd".to_owned(),
            1,
            0.0,
            task_failed(Code::SourceSchemeRefused),
        ),
        (
            "metadata-service source",
            "http://169.254.169.254/latest/meta-data/iam/".to_owned(),
            1,
            0.0,
            task_failed(Code::SourceAddressForbidden),
        ),
        (
            "start past the end",
            s3_url(&video_key),
            1,
            30.0,
            task_failed(Code::InvalidParameter),
        ),
        (
            "job version 99",
            s3_url(&video_key),
            99,
            0.0,
            task_failed(Code::UnsupportedVersion),
        ),
        (
            "audio-only source",
            s3_url(&audio_key),
            1,
            0.0,
            task_failed(Code::NotVideo),
        ),
        (
            "good job in the same batch",
            s3_url(&video_key),
            1,
            0.0,
            (TaskStatus::Done, None),
        ),
    ] {
        let task_id = new_task(r).await;
        task_cases.push((case, job(&task_id, &src_url, version, start), task_id, expected));
    }
    let bodies: Vec<String> = dlq_cases
        .iter()
        .map(|(_, body, _, _)| body.clone())
        .chain(task_cases.iter().map(|(_, body, _, _)| body.clone()))
        .collect();
    send_batch(&r.env.clients.sqs, &r.out("GifJobsQueueUrl"), &bodies)
        .await
        .unwrap();

    let needles: Vec<String> = dlq_cases.iter().map(|(_, _, n, _)| n.clone()).collect();
    let dlq_url = r.out("GifJobsDeadLetterQueueUrl");
    let settle = |task_id: String| async move {
        match r.api.wait(&task_id, WAIT, |_| {}).await {
            Ok(answer) => Some(status_and_code(answer.status, answer.error().map(|e| e.code))),
            Err(e) => {
                eprintln!("gif task {task_id}: {e}");
                None
            }
        }
    };
    let (found, settled) = tokio::join!(
        find_in_queue(&r.env.clients.sqs, &dlq_url, &needles, WAIT),
        futures::future::join_all(task_cases.iter().map(|(_, _, task_id, _)| settle(task_id.clone()))),
    );
    let found = found.unwrap();
    for (case, _, needle, expected) in &dlq_cases {
        let got = found
            .get(needle)
            .map(|f| dlq(f.attributes.get(REJECTION_CODE).map(String::as_str).unwrap_or("")));
        r.catalogue.add("gif-converter", *case, expected.clone(), got);
    }
    for ((case, _, _, (status, code)), got) in task_cases.iter().zip(settled) {
        let expected = status_and_code(status, *code);
        if *status == TaskStatus::Done {
            r.catalogue.control("gif-converter", *case, expected, got);
        } else {
            r.catalogue.add("gif-converter", *case, expected, got);
        }
    }
}

/// A QUEUED task written straight into the table, as the API would.
async fn new_task(r: &Run) -> String {
    put_queued_task(&r.dynamodb, &r.out("TasksTableName")).await.unwrap()
}

// ------------------------------------------------------------------ GIF API (HTTP)

async fn gif_api(r: &Run) {
    let convert = |src: &str| json!({"action": "convert", "src_url": src}).to_string();
    let cases: Vec<(&str, String, (u16, Code))> = vec![
        ("body not JSON", "{{{".into(), (400, Code::BadJson)),
        ("empty body", String::new(), (400, Code::BadJson)),
        (
            "20 KB body",
            json!({"action": "convert", "pad": "x".repeat(20_000)}).to_string(),
            (413, Code::BodyTooLarge),
        ),
        (
            "no action",
            json!({"src_url": "https://example.com/a.mp4"}).to_string(),
            (400, Code::MissingAction),
        ),
        (
            "action of the wrong type",
            json!({"action": 7}).to_string(),
            (400, Code::MissingAction),
        ),
        (
            "src_url of the wrong type",
            json!({"action": "convert", "src_url": 5}).to_string(),
            (400, Code::SourceUrlInvalid),
        ),
        (
            "negative start",
            json!({"action": "convert", "src_url": "https://example.com/a.mp4", "start": -5}).to_string(),
            (400, Code::InvalidParameter),
        ),
        (
            "zero duration",
            json!({"action": "convert", "src_url": "https://example.com/a.mp4", "duration": 0}).to_string(),
            (400, Code::InvalidParameter),
        ),
        (
            "start as text",
            json!({"action": "convert", "src_url": "https://example.com/a.mp4", "start": "soon"}).to_string(),
            (400, Code::InvalidParameter),
        ),
        (
            "src_url not a URL",
            convert("not a url at all"),
            (400, Code::SourceUrlInvalid),
        ),
        (
            "src_url like an option",
            convert("-i /etc/passwd"),
            (400, Code::SourceUrlInvalid),
        ),
        (
            "file:// src_url",
            convert("file:///etc/passwd"),
            (400, Code::SourceSchemeRefused),
        ),
        (
            "metadata-service src_url",
            convert("http://169.254.169.254/latest/meta-data/"),
            (400, Code::SourceAddressForbidden),
        ),
        (
            "IPv4-mapped IPv6 loopback",
            convert("http://[::ffff:127.0.0.1]:22/x.mp4"),
            (400, Code::SourceAddressForbidden),
        ),
        (
            "credentials in src_url",
            convert("https://user:pw@example.com/x.mp4"),
            (400, Code::SourceUrlInvalid),
        ),
        (
            "s3:// src_url of another bucket",
            convert("s3://someone-elses-bucket/a.mp4"),
            (400, Code::SourceBucketRefused),
        ),
        (
            "task id with SQL",
            json!({"action": "get_task_status", "task_id": "x'; DROP TABLE tasks; --"}).to_string(),
            (400, Code::InvalidTaskId),
        ),
    ];
    for (case, body, (status, code)) in cases {
        let got = match r.api.call(&body).await {
            Ok((status, answer)) => Some(match serde_json::from_value::<ApiErrorAnswer>(answer.clone()) {
                Ok(error) => http_error(status, error.error.code),
                Err(_) => format!("{status} (not an error answer) {answer}"),
            }),
            Err(e) => Some(format!("request failed: {e}")),
        };
        r.catalogue.add("gif-api", case, http_error(status, code), got);
    }
}

// ------------------------------------------------------------------ MediaConvert submitter + results

async fn mediaconvert(r: &Run) {
    let bucket = r.out("SourceBucketName");
    let prefix = format!("{}bad-{}/", r.out("MediaConvertUploadsPrefix"), r.run);
    let good = std::fs::read(r.sample(TINY).await).unwrap();
    let playlist = playlist_naming_a_local_file(r.env.work.path()).await;
    let odd_name = "-i $(id) +%é.mp4";
    let cases: Vec<(&str, &str, Vec<u8>, String)> = vec![
        (
            "zero-byte upload",
            "empty.mp4",
            Vec::new(),
            about(Job::Mediaconvert, rejected(Code::EmptyObject)),
        ),
        (
            "text named .mp4",
            "notes.mp4",
            b"not a video\n".repeat(100),
            about(Job::Mediaconvert, failed(Code::MediaconvertError)),
        ),
        (
            "HLS playlist named .mp4, naming a file on the stand-in's disk",
            "playlist.mp4",
            playlist,
            about(Job::Mediaconvert, failed(Code::MediaconvertError)),
        ),
        (
            "key like an option with shell metacharacters",
            odd_name,
            good,
            about(Job::Mediaconvert, ResultStatus::Available),
        ),
    ];
    for (_, name, bytes, _) in &cases {
        upload_bytes(&r.env.clients.s3, &bucket, &format!("{prefix}{name}"), bytes.clone())
            .await
            .unwrap();
    }
    let stem = format!("mediaconvert/{prefix}{}", odd_name.trim_end_matches(".mp4"));
    let expected_outputs = format!("{stem}-hd.mp4 {stem}-sd.mp4");
    let waits = cases.iter().map(|(case, name, _, expected)| {
        let key = format!("{prefix}{name}");
        let expected_outputs = expected_outputs.clone();
        async move {
            let results = r
                .answers(
                    |v| is_pipeline_result(v, |result| result.source.key == key && result.job == Job::Mediaconvert),
                    1,
                )
                .await;
            let got = describe_results(&results, |_| expected_outputs.clone());
            r.catalogue.add("mediaconvert-submitter", *case, expected.clone(), got);
        }
    });
    futures::future::join_all(waits).await;

    let submitter = r.out("MediaConvertSubmitterFunctionName");
    let got = r
        .catalogue
        .invoke(&r.env.clients.lambda, &submitter, b"{}")
        .await
        .map(|(g, _)| g);
    r.catalogue.add(
        "mediaconvert-submitter",
        "empty event {}",
        fn_error(ErrorKind::Rejected, Code::MalformedEvent),
        got,
    );
    let got = r
        .catalogue
        .invoke(&r.env.clients.lambda, &submitter, b"[null]")
        .await
        .map(|(g, _)| g);
    r.catalogue.add(
        "mediaconvert-submitter",
        "event a JSON array",
        fn_error(ErrorKind::Rejected, Code::MalformedEvent),
        got,
    );
}

async fn mediaconvert_results(r: &Run) {
    let function = r.out("MediaConvertResultsFunctionName");
    let pipeline = r.out("PipelineName");
    let source_key = format!("{}bad-{}/h-fake.mp4", r.out("MediaConvertUploadsPrefix"), r.run);
    let event = |status: &str, metadata: Value, extra: Value| {
        let mut detail = json!({"timestamp": 1, "accountId": "000000000000", "queue": "q",
            "jobId": format!("job-{}", r.run), "status": status, "userMetadata": metadata});
        if let (Some(detail), Some(extra)) = (detail.as_object_mut(), extra.as_object()) {
            detail.extend(extra.clone());
        }
        json!({"version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "MediaConvert Job State Change",
               "source": r.out("MediaConvertEventSource"), "account": "000000000000", "time": "2026-11-21T09:00:00Z",
               "region": "us-east-1", "resources": [], "detail": detail})
    };
    let full_metadata = json!({"pipeline": pipeline, "template": "hd-sd",
        "sourceBucket": r.out("SourceBucketName"), "sourceKey": source_key});
    for (case, payload) in [
        ("empty event {}", "{}".to_owned()),
        ("event a JSON array", "[1,2]".to_owned()),
        (
            "COMPLETE with outputGroupDetails of the wrong type",
            event("COMPLETE", full_metadata.clone(), json!({"outputGroupDetails": "lots"})).to_string(),
        ),
        (
            "output path outside any bucket",
            event(
                "COMPLETE",
                full_metadata.clone(),
                json!({"outputGroupDetails": [{"outputDetails": [{"outputFilePaths": ["/etc/passwd"]}], "type": "FILE_GROUP"}]}),
            )
            .to_string(),
        ),
    ] {
        let got = r.catalogue.invoke(&r.env.clients.lambda, &function, payload.as_bytes()).await.map(|(g, _)| g);
        r.catalogue.add(
            "mediaconvert-results",
            case,
            fn_error(ErrorKind::Rejected, Code::MalformedEvent),
            got,
        );
    }

    // Through EventBridge (asynchronous invoke): a job event this pipeline never submitted
    // (no source in its metadata) beside a good ERROR event, in one PutEvents.
    let mut stray = event("ERROR", json!({"pipeline": pipeline}), json!({"errorCode": 1010}));
    stray["detail"]["jobId"] = format!("job-{}-stray", r.run).into();
    let good = event(
        "ERROR",
        full_metadata,
        json!({"errorCode": 1010, "errorMessage": "Unable to open input file"}),
    );
    let entry = |e: &Value| {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(e["source"].as_str().unwrap())
            .detail_type("MediaConvert Job State Change")
            .detail(e["detail"].to_string())
            .build()
    };
    r.env
        .clients
        .events
        .put_events()
        .entries(entry(&stray))
        .entries(entry(&good))
        .send()
        .await
        .unwrap();
    // EventBridge invokes the function asynchronously. On AWS a failed event would rest in the
    // function's on-failure queue after two retries; ministack's EventBridge invokes once and
    // keeps no failure, so the named error is read from the function's log.
    let log_group = format!("/aws/lambda/{function}");
    let stray_job = stray["detail"]["jobId"].as_str().unwrap_or("").to_owned();
    let logged = async {
        let started = Instant::now();
        while started.elapsed() < WAIT {
            let lines = log_lines(&log_group, SystemTime::now() - Duration::from_secs(600))
                .await
                .unwrap_or_default();
            if let Some(line) = lines.iter().find(|l| l.contains(&stray_job) && l.contains("\"code\"")) {
                let line: Value = serde_json::from_str(line).unwrap_or_default();
                return Some(format!("logged {}", line["fields"]["code"].as_str().unwrap_or("?")));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        None
    };
    let (got, good) = tokio::join!(
        logged,
        r.answers(
            |v| is_pipeline_result(v, |result| {
                result.source.key == source_key && result.job == Job::Mediaconvert
            }),
            1
        ),
    );
    r.catalogue.add(
        "mediaconvert-results",
        "job event without a source, via EventBridge",
        format!("logged {}", Code::MalformedEvent),
        got,
    );
    r.catalogue.control(
        "mediaconvert-results",
        "good ERROR event in the same PutEvents",
        about(Job::Mediaconvert, failed(Code::MediaconvertError)),
        describe_results(&good, |_| String::new()),
    );
}

// ------------------------------------------------------------------ the catalogue

/// Crashes the stack recorded over the run: `Errors` beyond the named ones provoked, crash
/// lines in the functions' logs, and unnamed errors in the on-failure queues.
async fn recorded_crashes(r: &Run, started: SystemTime) -> Vec<String> {
    let mut crashes = r.catalogue.crashes.lock().unwrap().clone();
    let ended = SystemTime::now();
    let named = r.catalogue.named_errors.lock().unwrap().clone();
    let functions = [
        "UploadPublisherFunctionName",
        "ClipTrimmerFunctionName",
        "GifApiFunctionName",
        "GifConverterFunctionName",
        "MediaConvertSubmitterFunctionName",
        "MediaConvertResultsFunctionName",
    ]
    .map(String::from)
    .into_iter()
    .chain(
        rendition_profiles()
            .into_iter()
            .map(|p| rendition_output(p, "FunctionName")),
    );
    for output in functions {
        let function = r.out(&output);
        let errors = lambda_errors(&function, started, ended).await.unwrap_or_else(|e| {
            crashes.push(format!("{function}: Errors metric unreadable: {e}"));
            0.0
        });
        // The emulator also counts a throttled Invoke (answered 429, then retried) as an error;
        // AWS does not, and a throttle is no crash.
        let throttles = lambda_throttles(&function, started, ended).await.unwrap_or(0.0);
        let errors = (errors - throttles).max(0.0);
        let provoked = named.get(&function).copied().unwrap_or(0.0);
        if errors > provoked {
            crashes.push(format!(
                "{function}: Errors metric {errors} > {provoked} named errors provoked"
            ));
        }
        let lines = log_lines(&format!("/aws/lambda/{function}"), started)
            .await
            .unwrap_or_default();
        println!(
            "crash signals for {function}: Errors metric less throttles {errors} ({throttles} throttled; {provoked} named errors provoked), {} log lines read",
            lines.len()
        );
        for line in crash_lines(&lines) {
            crashes.push(format!("{function} log: {}", shared::error::truncate_chars(&line, 200)));
        }
    }
    for output in [
        "UploadPublisherDeadLetterQueueUrl",
        "MediaConvertSubmitterDeadLetterQueueUrl",
        "MediaConvertResultsDeadLetterQueueUrl",
    ] {
        let found = find_in_queue(
            &r.env.clients.sqs,
            &r.out(output),
            std::slice::from_ref(&r.run),
            Duration::from_secs(3),
        )
        .await
        .unwrap_or_default();
        for hit in found.values() {
            let envelope: Value = serde_json::from_str(&hit.body).unwrap_or_default();
            let error_type = envelope["responsePayload"]["errorType"].as_str().unwrap_or("");
            if !is_named_error(error_type) {
                crashes.push(format!(
                    "{output}: {error_type:?} {}",
                    shared::error::truncate_chars(&hit.body, 200)
                ));
            }
        }
    }
    crashes
}

fn cell(text: &str, width: usize) -> String {
    let shown: String = text.chars().take(width).collect();
    format!("{shown:<width$}")
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn every_function_answers_every_bad_input_by_name_and_keeps_the_rest_of_its_batch() {
    let started_at = Instant::now();
    let started = SystemTime::now() - Duration::from_secs(2);
    let env = TestEnv::load().await;
    let tap = env.results_tap("bad-inputs").await;
    let sdk = shared::clients::load_sdk_config().await;
    let run = Run {
        api: GifApi::from_outputs(&env.outputs).unwrap(),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        run: unique_suffix(),
        catalogue: Catalogue::default(),
        tap,
        env,
    };
    let cases = async {
        tokio::join!(
            uploads(&run),
            publisher_events(&run),
            rendition_batch(&run),
            clip_batch(&run),
            gif_batch(&run),
            gif_api(&run),
            mediaconvert(&run),
            mediaconvert_results(&run),
        );
    };
    cases.await;
    let crashes = recorded_crashes(&run, started).await;
    let Run { tap, catalogue, .. } = run;
    tap.close().await;

    let mut rows = catalogue.rows.into_inner().unwrap();
    rows.sort_by(|a, b| (a.function, a.control).cmp(&(b.function, b.control)));
    println!(
        "\n{} | {} | {} | got",
        cell("function", 26),
        cell("case", 44),
        cell("expected", 40)
    );
    let mut wrong = Vec::new();
    for row in &rows {
        let got = row.got.clone().unwrap_or_else(|| "(no answer: silent drop)".into());
        let mark = if row.got.as_deref() == Some(row.expected.as_str()) {
            ""
        } else {
            "  <-- WRONG"
        };
        let case = if row.control {
            format!("[good] {}", row.case)
        } else {
            row.case.clone()
        };
        println!(
            "{} | {} | {} | {}{mark}",
            cell(row.function, 26),
            cell(&case, 44),
            cell(&row.expected, 40),
            shared::error::truncate_chars(&got, 160)
        );
        if !mark.is_empty() {
            wrong.push(format!(
                "{} / {}: expected {:?}, got {got:?}",
                row.function, row.case, row.expected
            ));
        }
    }
    for crash in &crashes {
        println!("crash: {crash}");
    }
    let cases = rows.iter().filter(|r| !r.control).count();
    let drops = rows.iter().filter(|r| r.got.is_none()).count();
    let functions: std::collections::BTreeSet<_> = rows.iter().map(|r| r.function).collect();
    println!(
        "bad-input catalogue: {cases} cases, {} crashes, {drops} silent drops",
        crashes.len()
    );
    println!(
        "({} good messages beside them; functions: {}; {:.0} s)",
        rows.len() - cases,
        functions.into_iter().collect::<Vec<_>>().join(", "),
        started_at.elapsed().as_secs_f64()
    );
    assert!(cases >= 40, "only {cases} cases");
    assert!(crashes.is_empty(), "crashes: {crashes:#?}");
    assert_eq!(drops, 0, "silent drops");
    assert!(
        wrong.is_empty(),
        "cases without their expected answer:\n{}",
        wrong.join("\n")
    );
}
