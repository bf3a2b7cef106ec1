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

/// `rejected.MALFORMED_EVENT`, `failed.X`, `retryable.X`: the suite's `Diagnostic` types.
fn is_named_error(error_type: &str) -> bool {
    error_type.split_once('.').is_some_and(|(kind, code)| {
        ["rejected", "failed", "retryable"].contains(&kind)
            && !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
    })
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
        .map(|r| {
            let who = r["profile"]
                .as_str()
                .filter(|_| r["job"] == "rendition")
                .unwrap_or(r["job"].as_str().unwrap_or("?"))
                .to_owned();
            let status = r["status"].as_str().unwrap_or("?");
            if status == "available" {
                let at = if r["job"] == "mediaconvert" {
                    r["mediaconvert"]["outputs"]
                        .as_array()
                        .map(|o| o.iter().filter_map(|o| o["key"].as_str()).collect::<Vec<_>>().join(" "))
                        .unwrap_or_default()
                } else {
                    r["output"]["key"].as_str().unwrap_or("").to_owned()
                };
                if at == expected_output(&who) {
                    format!("{who} available")
                } else {
                    format!("{who} available at {at}")
                }
            } else {
                format!("{who} {status} {}", r["reason"]["code"].as_str().unwrap_or("?"))
            }
        })
        .collect();
    parts.sort_by_key(|p| (p.len(), p.clone()));
    Some(parts.join(", "))
}

/// One `<profile> <status>` per deployed profile, in [`describe_results`]'s order.
fn renditions(status: &str) -> String {
    rendition_profiles()
        .iter()
        .map(|profile| format!("{profile} {status}"))
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
    let long_name = format!("{}.mp4", "L".repeat(1010 - prefix.len() - 4));
    let cases: Vec<(&str, String, Vec<u8>, String)> = vec![
        (
            "key with spaces",
            "my holiday clip.mp4".into(),
            good.clone(),
            renditions("available"),
        ),
        ("key with +", "a+b+c.mp4".into(), good.clone(), renditions("available")),
        (
            "key with %",
            "100% done %2B %zz.mp4".into(),
            good.clone(),
            renditions("available"),
        ),
        (
            "key with unicode",
            "café 🎬 日本語.mp4".into(),
            good.clone(),
            renditions("available"),
        ),
        (
            "key like options",
            "-i/--x -y.mp4".into(),
            good.clone(),
            renditions("available"),
        ),
        (
            "key with shell metacharacters",
            "$(touch pwned); `id` | & > 'q' \"d\" \\ *?.mp4".into(),
            good.clone(),
            renditions("available"),
        ),
        (
            "key too long for its outputs",
            long_name,
            good.clone(),
            renditions("rejected KEY_TOO_LONG"),
        ),
        (
            "zero-byte .mp4",
            "empty.mp4".into(),
            Vec::new(),
            "upload rejected EMPTY_OBJECT".into(),
        ),
        (
            "truncated .mp4",
            "truncated.mp4".into(),
            plain[..plain.len() * 2 / 3].to_vec(),
            renditions("rejected CORRUPT_INPUT"),
        ),
        (
            "text named .mp4",
            "notes.mp4".into(),
            b"just some text\n".repeat(200),
            renditions("rejected CORRUPT_INPUT"),
        ),
        (
            "audio-only .mp4",
            "song.mp4".into(),
            audio,
            renditions("rejected NOT_VIDEO"),
        ),
        (
            "container lies about codec",
            "liar.mp4".into(),
            lying_codec(&plain),
            renditions("rejected CORRUPT_INPUT"),
        ),
        (
            "Matroska named .mp4",
            "really-mkv.mp4".into(),
            mkv,
            renditions("available"),
        ),
        (
            "not a video extension",
            "notes.txt".into(),
            b"text".to_vec(),
            "upload rejected NOT_VIDEO".into(),
        ),
        (
            "no extension",
            "README".into(),
            good.clone(),
            "upload rejected NOT_VIDEO".into(),
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
        r.catalogue
            .add("upload-publisher", case, "fn error rejected.MALFORMED_EVENT", got);
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
            |v| v["job"] == "upload"
                && v["source"]["key"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(&huge_malformed_prefix),
            1
        ),
        r.answers(
            |v| v["reason"]["code"] == "KEY_TOO_LONG"
                && v["job"] == "upload"
                && v["source"]["key"].as_str().unwrap_or("").contains(&r.run),
            1
        ),
        r.results_for_key(&good_key, rendition_profiles().len()),
    );
    r.catalogue.add(
        "upload-publisher",
        "key not UTF-8 once decoded",
        "upload rejected MALFORMED_EVENT",
        describe_results(&bad_utf8, |_| String::new()),
    );
    r.catalogue.add(
        "upload-publisher",
        "malformed record with a 300 KB key",
        "upload rejected MALFORMED_EVENT",
        describe_results(&huge_malformed, |_| String::new()),
    );
    r.catalogue.add(
        "upload-publisher",
        "300 KB key in the event",
        "upload rejected KEY_TOO_LONG",
        describe_results(&huge, |_| String::new()),
    );
    r.catalogue.control(
        "upload-publisher",
        "good record of that event",
        renditions("available"),
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
    let dlq = r.out("Rendition720DeadLetterQueueUrl");
    let (found, missing, good) = tokio::join!(
        find_in_queue(&r.env.clients.sqs, &dlq, &needles, WAIT),
        r.results_for_key(&missing_key, 1),
        r.results_for_key(&good_key, 1),
    );
    let found = found.unwrap();
    for (case, _, needle) in &dlq_cases {
        let got = found.get(needle).map(|f| {
            format!(
                "dlq {}",
                f.attributes
                    .get("rejection_code")
                    .map(String::as_str)
                    .unwrap_or("(no code)")
            )
        });
        r.catalogue.add("rendition-720p", *case, "dlq MALFORMED_MESSAGE", got);
    }
    r.catalogue.add(
        "rendition-720p",
        "notice for a missing object",
        "720p rejected SOURCE_MISSING",
        describe_results(&missing, |_| String::new()),
    );
    r.catalogue.control(
        "rendition-720p",
        "good notice in the same batch",
        "720p available",
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
    let cases: Vec<(&str, String, Option<String>, &str)> = vec![
        (
            "body not JSON",
            format!("<clip>{}</clip>", id("d1")),
            None,
            "dlq CLIP_INVALID",
        ),
        (
            "wrong types",
            format!(
                r#"{{"clipId":"{}","cameraId":5,"startTimestampInMs":"yesterday"}}"#,
                id("d2")
            ),
            Some(id("d2")),
            "CLIP_INVALID CLIP_INVALID",
        ),
        (
            "end before start",
            request_json(&id("d3"), &camera_id, start + 3_000, start + 1_000),
            Some(id("d3")),
            "CLIP_INVALID CLIP_INVALID",
        ),
        (
            "zero-length range",
            request_json(&id("d4"), &camera_id, start + 1_000, start + 1_000),
            Some(id("d4")),
            "CLIP_INVALID CLIP_INVALID",
        ),
        (
            "start before 1970",
            request_json(&id("d5"), &camera_id, -5_000, start),
            Some(id("d5")),
            "CLIP_INVALID CLIP_INVALID",
        ),
        (
            "range longer than allowed",
            request_json(&id("d6"), &camera_id, start, start + 601_000),
            Some(id("d6")),
            "CLIP_INVALID CLIP_INVALID",
        ),
        (
            "option-like camera id",
            request_json(&id("d7"), "--camera=-i", start, start + 1_000),
            Some(id("d7")),
            "CLIP_INVALID CLIP_INVALID",
        ),
        (
            "timestamps beyond i64",
            format!(
                r#"{{"clipId":"{}","cameraId":"{camera_id}","startTimestampInMs":1e300,"endTimestampInMs":99999999999999999999999}}"#,
                id("d8")
            ),
            Some(id("d8")),
            "CLIP_INVALID CLIP_INVALID",
        ),
        (
            "Python dict with True/None",
            format!("{{'clipId': '{}', 'cameraId': None, 'retry': True}}", id("d9")),
            None,
            "dlq CLIP_INVALID",
        ),
    ];
    let good_id = id("good");
    let mut bodies: Vec<String> = cases.iter().map(|(_, body, _, _)| body.clone()).collect();
    bodies.push(request_json(&good_id, &camera_id, start + 1_000, start + 2_000));
    send_batch(&r.env.clients.sqs, &r.out("ClipRequestsQueueUrl"), &bodies)
        .await
        .unwrap();

    let clip_answer = |clip_id: String| async move {
        let results = r
            .answers(|v| v["clipId"] == clip_id.as_str() && v["status"] != "CLIP_PENDING", 1)
            .await;
        results.first().map(|v| {
            format!(
                "{} {}",
                v["status"].as_str().unwrap_or("?"),
                v["code"].as_str().unwrap_or("")
            )
            .trim()
            .to_owned()
        })
    };
    let dlq_needles: Vec<String> = vec![id("d1"), id("d9")];
    let dlq = r.out("ClipRequestsDeadLetterQueueUrl");
    let (found, answers, good) = tokio::join!(
        find_in_queue(&r.env.clients.sqs, &dlq, &dlq_needles, WAIT),
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
        let got = if expected.starts_with("dlq") {
            found
                .iter()
                .find(|(needle, _)| body.contains(needle.as_str()))
                .map(|(_, f)| {
                    format!(
                        "dlq {}",
                        f.attributes.get("rejection_code").map(String::as_str).unwrap_or("")
                    )
                })
        } else {
            answer
        };
        r.catalogue.add("clip-trimmer", *case, *expected, got);
    }
    r.catalogue
        .control("clip-trimmer", "good request in the same batch", "CLIP_AVAILABLE", good);
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
    let dlq_cases: Vec<(&str, String, String, &str)> = {
        let unknown_task = uuid::Uuid::new_v4().to_string();
        vec![
            (
                "body not JSON",
                format!("{{not json {}", id("e1")),
                id("e1"),
                "dlq MALFORMED_MESSAGE",
            ),
            (
                "task id a path",
                job(&format!("../../{}", id("e2")), "https://example.com/a.mp4", 1, 0.0),
                id("e2"),
                "dlq MALFORMED_MESSAGE",
            ),
            (
                "wrong types",
                json!({"version": "one", "task_id": 5, "src_url": [id("e3")]}).to_string(),
                id("e3"),
                "dlq MALFORMED_MESSAGE",
            ),
            (
                "job for a task that does not exist",
                job(&unknown_task, &s3_url(&video_key), 1, 0.0),
                unknown_task.clone(),
                "dlq TASK_NOT_FOUND",
            ),
        ]
    };
    let mut task_cases: Vec<(&str, String, String, &str)> = Vec::new();
    for (case, src_url, version, start, expected) in [
        (
            "file:// source",
            "file:///etc/passwd".to_owned(),
            1,
            0.0,
            "FAILED SOURCE_SCHEME_REFUSED",
        ),
        (
            "metadata-service source",
            "http://169.254.169.254/latest/meta-data/iam/".to_owned(),
            1,
            0.0,
            "FAILED SOURCE_ADDRESS_FORBIDDEN",
        ),
        (
            "start past the end",
            s3_url(&video_key),
            1,
            30.0,
            "FAILED INVALID_PARAMETER",
        ),
        (
            "job version 99",
            s3_url(&video_key),
            99,
            0.0,
            "FAILED UNSUPPORTED_VERSION",
        ),
        ("audio-only source", s3_url(&audio_key), 1, 0.0, "FAILED NOT_VIDEO"),
        ("good job in the same batch", s3_url(&video_key), 1, 0.0, "DONE"),
    ] {
        let task_id = new_task(r).await;
        task_cases.push((case, job(&task_id, &src_url, version, start), task_id, expected));
    }
    let bodies: Vec<String> = dlq_cases
        .iter()
        .chain(&task_cases)
        .map(|(_, body, _, _)| body.clone())
        .collect();
    send_batch(&r.env.clients.sqs, &r.out("GifJobsQueueUrl"), &bodies)
        .await
        .unwrap();

    let needles: Vec<String> = dlq_cases.iter().map(|(_, _, n, _)| n.clone()).collect();
    let dlq = r.out("GifJobsDeadLetterQueueUrl");
    let settle = |task_id: String| async move {
        match r.api.wait(&task_id, WAIT, |_| {}).await {
            Ok(answer) => Some(
                format!(
                    "{} {}",
                    answer["status"].as_str().unwrap_or("?"),
                    answer["error"]["code"].as_str().unwrap_or("")
                )
                .trim()
                .to_owned(),
            ),
            Err(e) => {
                eprintln!("gif task {task_id}: {e}");
                None
            }
        }
    };
    let (found, settled) = tokio::join!(
        find_in_queue(&r.env.clients.sqs, &dlq, &needles, WAIT),
        futures::future::join_all(task_cases.iter().map(|(_, _, task_id, _)| settle(task_id.clone()))),
    );
    let found = found.unwrap();
    for (case, _, needle, expected) in &dlq_cases {
        let got = found.get(needle).map(|f| {
            format!(
                "dlq {}",
                f.attributes.get("rejection_code").map(String::as_str).unwrap_or("")
            )
        });
        r.catalogue.add("gif-converter", *case, *expected, got);
    }
    for ((case, _, _, expected), got) in task_cases.iter().zip(settled) {
        if *expected == "DONE" {
            r.catalogue.control("gif-converter", *case, *expected, got);
        } else {
            r.catalogue.add("gif-converter", *case, *expected, got);
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
    let cases: Vec<(&str, String, &str)> = vec![
        ("body not JSON", "{{{".into(), "400 BAD_JSON"),
        ("empty body", String::new(), "400 BAD_JSON"),
        (
            "20 KB body",
            json!({"action": "convert", "pad": "x".repeat(20_000)}).to_string(),
            "413 BODY_TOO_LARGE",
        ),
        (
            "no action",
            json!({"src_url": "https://example.com/a.mp4"}).to_string(),
            "400 MISSING_ACTION",
        ),
        (
            "action of the wrong type",
            json!({"action": 7}).to_string(),
            "400 MISSING_ACTION",
        ),
        (
            "src_url of the wrong type",
            json!({"action": "convert", "src_url": 5}).to_string(),
            "400 SOURCE_URL_INVALID",
        ),
        (
            "negative start",
            json!({"action": "convert", "src_url": "https://example.com/a.mp4", "start": -5}).to_string(),
            "400 INVALID_PARAMETER",
        ),
        (
            "zero duration",
            json!({"action": "convert", "src_url": "https://example.com/a.mp4", "duration": 0}).to_string(),
            "400 INVALID_PARAMETER",
        ),
        (
            "start as text",
            json!({"action": "convert", "src_url": "https://example.com/a.mp4", "start": "soon"}).to_string(),
            "400 INVALID_PARAMETER",
        ),
        (
            "src_url not a URL",
            convert("not a url at all"),
            "400 SOURCE_URL_INVALID",
        ),
        (
            "src_url like an option",
            convert("-i /etc/passwd"),
            "400 SOURCE_URL_INVALID",
        ),
        (
            "file:// src_url",
            convert("file:///etc/passwd"),
            "400 SOURCE_SCHEME_REFUSED",
        ),
        (
            "metadata-service src_url",
            convert("http://169.254.169.254/latest/meta-data/"),
            "400 SOURCE_ADDRESS_FORBIDDEN",
        ),
        (
            "IPv4-mapped IPv6 loopback",
            convert("http://[::ffff:127.0.0.1]:22/x.mp4"),
            "400 SOURCE_ADDRESS_FORBIDDEN",
        ),
        (
            "credentials in src_url",
            convert("https://user:pw@example.com/x.mp4"),
            "400 SOURCE_URL_INVALID",
        ),
        (
            "s3:// src_url of another bucket",
            convert("s3://someone-elses-bucket/a.mp4"),
            "400 SOURCE_BUCKET_REFUSED",
        ),
        (
            "task id with SQL",
            json!({"action": "get_task_status", "task_id": "x'; DROP TABLE tasks; --"}).to_string(),
            "400 INVALID_TASK_ID",
        ),
    ];
    for (case, body, expected) in cases {
        let got = match r.api.call(&body).await {
            Ok((status, answer)) => Some(format!(
                "{status} {}",
                answer["error"]["code"].as_str().unwrap_or("(no code)")
            )),
            Err(e) => Some(format!("request failed: {e}")),
        };
        r.catalogue.add("gif-api", case, expected, got);
    }
}

// ------------------------------------------------------------------ MediaConvert submitter + results

async fn mediaconvert(r: &Run) {
    let bucket = r.out("SourceBucketName");
    let prefix = format!("{}bad-{}/", r.out("MediaConvertUploadsPrefix"), r.run);
    let good = std::fs::read(r.sample(TINY).await).unwrap();
    let odd_name = "-i $(id) +%é.mp4";
    let cases: Vec<(&str, &str, Vec<u8>, String)> = vec![
        (
            "zero-byte upload",
            "empty.mp4",
            Vec::new(),
            "mediaconvert rejected EMPTY_OBJECT".into(),
        ),
        (
            "text named .mp4",
            "notes.mp4",
            b"not a video\n".repeat(100),
            "mediaconvert failed MEDIACONVERT_ERROR".into(),
        ),
        (
            "key like an option with shell metacharacters",
            odd_name,
            good,
            "mediaconvert available".into(),
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
                .answers(|v| v["source"]["key"] == key.as_str() && v["job"] == "mediaconvert", 1)
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
        "fn error rejected.MALFORMED_EVENT",
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
        "fn error rejected.MALFORMED_EVENT",
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
        r.catalogue.add("mediaconvert-results", case, "fn error rejected.MALFORMED_EVENT", got);
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
            |v| v["source"]["key"] == source_key.as_str() && v["job"] == "mediaconvert",
            1
        ),
    );
    r.catalogue.add(
        "mediaconvert-results",
        "job event without a source, via EventBridge",
        "logged MALFORMED_EVENT",
        got,
    );
    r.catalogue.control(
        "mediaconvert-results",
        "good ERROR event in the same PutEvents",
        "mediaconvert failed MEDIACONVERT_ERROR",
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
