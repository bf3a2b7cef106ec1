//! End-to-end tests of the clip trimmer on the local stack: recordings in the recordings
//! bucket, the camera API stand-in, clip requests on the queue, results on the results topic.
//! `#[ignore]`d like every test that needs the deployed stack; `make test` runs them.

use std::time::{Duration, Instant};

use harness::clips::{
    record, request, request_clip, request_json, statuses, take_clip_results, wait_for_clip_results, Recorder,
};
use harness::media_checks::{count_frames, decode_errors, dimensions, first_frame_offset};
use harness::{list_keys, peek_queue, rejection_code, send_batch, unique_suffix, upload_bytes, Tap, TestEnv};
use local_services::Ports;
use shared::contracts::clip::{CappedSize, ClipMode, ClipRequest, ClipResult, ClipStatus};
use shared::Code;

const WAIT: Duration = Duration::from_secs(240);
const FPS: f64 = 25.0;

/// The common test environment and a tap on the results topic.
struct Env {
    base: TestEnv,
    tap: Tap,
}

impl std::ops::Deref for Env {
    type Target = TestEnv;
    fn deref(&self) -> &TestEnv {
        &self.base
    }
}

async fn env(name: &str) -> Env {
    let base = TestEnv::load().await;
    let tap = base.results_tap(name).await;
    Env { base, tap }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A recorder of 640x360 at 25 fps, 2 s GOPs: `count` recordings of 10 s from `start_ms`.
fn recorder(start_ms: i64, count: u32) -> Recorder {
    Recorder {
        width: 640,
        height: 360,
        fps: 25,
        gop_seconds: 2,
        seconds_each: 10,
        count,
        start_ms,
        preset: "veryfast",
    }
}

impl Env {
    fn recordings_bucket(&self) -> &str {
        self.outputs.get("RecordingsBucketName")
    }

    fn queue(&self) -> &str {
        self.outputs.get("ClipRequestsQueueUrl")
    }

    async fn camera(&self, camera_id: &str, alias: &str, recorder: Recorder) -> Vec<String> {
        record(
            &self.clients,
            self.recordings_bucket(),
            camera_id,
            alias,
            recorder,
            &self.work.path().join(alias),
        )
        .await
        .unwrap()
    }

    async fn results(&self, clip_id: &str, until: impl FnMut(&[ClipResult]) -> bool) -> Vec<ClipResult> {
        wait_for_clip_results(&self.tap, clip_id, WAIT, until).await.unwrap()
    }

    async fn download(&self, key: &str, name: &str) -> std::path::PathBuf {
        let local = self.work.path().join(name);
        shared::storage::download_to_file(&self.clients.s3, self.output_bucket(), key, &local)
            .await
            .unwrap();
        local
    }
}

fn final_status(results: &[ClipResult]) -> bool {
    results.iter().any(|r| r.status != ClipStatus::Pending)
}

/// A start on a whole second, far enough back that its recordings are "in the past".
fn recent_second(seconds_ago: i64) -> i64 {
    (now_ms() / 1000 - seconds_ago) * 1000
}

#[tokio::test]
#[ignore = "needs the local stack: make test"]
async fn a_clip_spanning_three_recordings_starts_on_the_requested_frame() {
    let env = env("clip-three").await;
    let suffix = unique_suffix();
    let camera_id = format!("cam-{suffix}");
    // An alias with a space and a `+`: it travels through the API, URLs and S3 keys.
    let alias = format!("front door+{suffix}");
    let start = recent_second(300);
    env.camera(&camera_id, &alias, recorder(start, 3)).await;
    // 3.32 s into the first recording (mid-GOP) to 6.52 s into the third; the seed's
    // Python-dict body style.
    let (from, to) = (start + 3_320, start + 26_520);
    let clip_id = format!("clip-{suffix}");
    let body = format!(
        "{{'clipId': '{clip_id}', 'retryTimestamps': [], 'cameraId': '{camera_id}', 'startTimestampInMs': {from}, 'endTimestampInMs': {to}}}"
    );
    request_clip(&env.clients, env.queue(), &body).await.unwrap();
    let results = env.results(&clip_id, final_status).await;
    let result = results.last().unwrap();
    assert_eq!(result.status, ClipStatus::Available, "{result:#?}");
    assert_eq!(result.bucket.as_deref(), Some(env.output_bucket()));
    let clip_link = result.clip.as_ref().expect("an available clip is linked");
    assert_eq!(clip_link.mode, ClipMode::SmartCut, "{result:#?}");
    let clip_key = clip_link.key.as_str();
    assert_eq!(clip_key, format!("clips/{camera_id}/{clip_id}.mp4"));
    assert!(clip_link.url.ends_with(clip_key));

    let clip = env.download(clip_key, "clip.mp4").await;
    let expected_frames = ((to - from) as f64 / 1000.0 * FPS).round() as i64;
    let frames = i64::from(count_frames(&clip));
    assert!(
        (frames - expected_frames).abs() <= 1,
        "{frames} frames for {expected_frames}"
    );
    assert_eq!(decode_errors(&clip), "", "the joins decode cleanly");
    // The first frame is the source's frame 3.32 s in (within one frame).
    let first_recording = env.work.path().join(&alias).join(format!("{alias}-000.mp4"));
    let offset = first_frame_offset(&clip, &first_recording, 3.32, 1.0 / FPS);
    assert!(offset.abs() <= 1, "first frame is {offset} frames off");

    // Thumbnails: 300 and 640 px; 1500 and 3000 capped at the recording's 640.
    let thumbnail = result.thumbnail.as_ref().expect("an available clip has thumbnails");
    assert_eq!(thumbnail.sizes, [300, 640]);
    assert_eq!(
        thumbnail.capped,
        [
            CappedSize {
                requested: 1500,
                width: 640
            },
            CappedSize {
                requested: 3000,
                width: 640
            }
        ]
    );
    let pattern = thumbnail.key.as_str();
    assert_eq!(pattern, format!("clips/{camera_id}/{clip_id}{{size}}.png"));
    for width in [300u32, 640] {
        let key = pattern.replace("{size}", &width.to_string());
        let png = env.download(&key, &format!("thumb-{width}.png")).await;
        assert_eq!(dimensions(&png), (width, width * 360 / 640));
    }

    // The camera API was told.
    let posted = harness::http::get(&format!(
        "{}/cameras/clips",
        local_services::url(Ports::from_env().camera_api)
    ))
    .await
    .unwrap()
    .json();
    let notice = posted
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clipId"] == clip_id.as_str())
        .expect("clip posted to /cameras/clips");
    assert_eq!(notice["alias"], alias.as_str());
}

#[tokio::test]
#[ignore = "needs the local stack: make test"]
async fn the_same_request_delivered_twice_makes_one_clip() {
    let env = env("clip-twice").await;
    let suffix = unique_suffix();
    let camera_id = format!("cam-{suffix}");
    let start = recent_second(300);
    env.camera(&camera_id, &format!("twice-{suffix}"), recorder(start, 1))
        .await;
    let clip_id = format!("twice-{suffix}");
    let body = request_json(&clip_id, &camera_id, start + 1_000, start + 5_000);
    request_clip(&env.clients, env.queue(), &body).await.unwrap();
    request_clip(&env.clients, env.queue(), &body).await.unwrap();
    // One clip and one result (shared::ledger); listen a while past the first for a second.
    let mut results = env.results(&clip_id, |r| !r.is_empty()).await;
    let quiet_until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < quiet_until {
        results.extend(take_clip_results(&env.tap, &clip_id).await.unwrap());
    }
    assert_eq!(statuses(&results), [ClipStatus::Available], "{results:#?}");
    let keys = list_keys(&env.clients.s3, env.output_bucket(), &format!("clips/{camera_id}/"))
        .await
        .unwrap();
    let clips: Vec<_> = keys.iter().filter(|k| k.ends_with(".mp4")).collect();
    assert_eq!(clips, [&format!("clips/{camera_id}/{clip_id}.mp4")]);
}

#[tokio::test]
#[ignore = "needs the local stack: make test"]
async fn a_clip_ending_in_the_future_is_pending_requeued_then_made() {
    let env = env("clip-pending").await;
    let suffix = unique_suffix();
    let camera_id = format!("cam-{suffix}");
    // The recorder has already "written" recordings up to 20 s from now (the stand-in lists
    // what is in the bucket); the request ends 6 s from now, so its first attempts find a range
    // that has not happened yet.
    let start = recent_second(10);
    env.camera(&camera_id, &format!("pending-{suffix}"), recorder(start, 3))
        .await;
    let clip_id = format!("pending-{suffix}");
    let end = now_ms() + 6_000;
    request_clip(
        &env.clients,
        env.queue(),
        &request_json(&clip_id, &camera_id, start + 2_000, end),
    )
    .await
    .unwrap();
    let mut arrivals = Vec::new();
    let results = wait_for_clip_results(&env.tap, &clip_id, WAIT, |r| {
        while arrivals.len() < r.len() {
            arrivals.push(Instant::now());
        }
        final_status(r)
    })
    .await
    .unwrap();
    let kinds = statuses(&results);
    assert_eq!(kinds.first(), Some(&ClipStatus::Pending), "{results:#?}");
    assert_eq!(kinds.last(), Some(&ClipStatus::Available), "{results:#?}");
    // Each re-queued copy carries one more retry timestamp, and says when it comes back.
    for (n, pending) in results.iter().filter(|r| r.status == ClipStatus::Pending).enumerate() {
        assert_eq!(
            pending.retry_timestamps.as_ref().map(Vec::len),
            Some(n + 1),
            "{pending:#?}"
        );
        assert_eq!(pending.next_attempt_in_seconds, Some(3), "the local SQS_TIMEOUT");
    }
    // The delay was applied: the next attempt came no sooner than it.
    assert!(
        arrivals[1] - arrivals[0] >= Duration::from_millis(2_500),
        "{arrivals:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: make test"]
async fn every_other_outcome_is_answered_by_name() {
    let env = env("clip-outcomes").await;
    let suffix = unique_suffix();
    let camera_id = format!("cam-{suffix}");
    let start = recent_second(300);
    env.camera(&camera_id, &format!("outcomes-{suffix}"), recorder(start, 1))
        .await;
    // A camera whose only recording is not a video.
    let broken_camera = format!("broken-{suffix}");
    let broken_alias = format!("broken-{suffix}");
    let names = local_services::camera_api::name_format();
    let broken_key = format!("recordings/{broken_alias}/{}", names.name_for(&broken_alias, start));
    env.clients
        .s3
        .put_object()
        .bucket(env.recordings_bucket())
        .key(&broken_key)
        .metadata("duration-ms", "10000")
        .body(b"this is not a video".to_vec().into())
        .send()
        .await
        .unwrap();
    upload_bytes(
        &env.clients.s3,
        env.recordings_bucket(),
        &local_services::camera_api::camera_marker_key(&broken_alias, &broken_camera),
        Vec::new(),
    )
    .await
    .unwrap();

    let now = now_ms();
    let id = |name: &str| format!("{name}-{suffix}");
    // The request, the status it comes to, and the code it is answered with.
    let cases: Vec<(String, String, ClipStatus, Option<Code>)> = vec![
        (
            id("backwards"),
            request_json(&id("backwards"), &camera_id, start + 5_000, start + 1_000),
            ClipStatus::Invalid,
            Some(Code::ClipInvalid),
        ),
        (
            id("too-long"),
            request_json(&id("too-long"), &camera_id, start, start + 601_000),
            ClipStatus::Invalid,
            Some(Code::ClipInvalid),
        ),
        (
            id("no-camera"),
            request_json(&id("no-camera"), &format!("nobody-{suffix}"), start, start + 1_000),
            ClipStatus::Invalid,
            Some(Code::CameraNotFound),
        ),
        (
            id("wrong-types"),
            format!(
                r#"{{"clipId":"{}","cameraId":5,"startTimestampInMs":"yesterday"}}"#,
                id("wrong-types")
            ),
            ClipStatus::Invalid,
            Some(Code::ClipInvalid),
        ),
        (
            id("old"),
            request_json(
                &id("old"),
                &camera_id,
                now - 4 * 86_400_000,
                now - 4 * 86_400_000 + 1_000,
            ),
            ClipStatus::OutOfRange,
            Some(Code::ClipOutOfRange),
        ),
        (
            id("gone"),
            // Two hours ago (no recordings), first asked for two minutes ago: past the local
            // SQS_RETRY_LIMIT of 60 s.
            serde_json::to_string(&ClipRequest {
                retry_timestamps: vec![now - 120_000],
                ..request(&id("gone"), &camera_id, now - 7_200_000, now - 7_190_000)
            })
            .unwrap(),
            ClipStatus::NotAvailable,
            Some(Code::ClipNotAvailable),
        ),
        (
            id("corrupt"),
            request_json(&id("corrupt"), &broken_camera, start + 1_000, start + 3_000),
            ClipStatus::Failed,
            Some(Code::RecordingCorrupt),
        ),
        (
            id("good"),
            request_json(&id("good"), &camera_id, start + 1_000, start + 3_000),
            ClipStatus::Available,
            None,
        ),
    ];
    // One batch: every message is answered on its own.
    let bodies: Vec<String> = cases.iter().map(|(_, body, _, _)| body.clone()).collect();
    send_batch(&env.clients.sqs, env.queue(), &bodies).await.unwrap();
    for (clip_id, _, status, code) in &cases {
        let results = env.results(clip_id, final_status).await;
        let result = results.last().unwrap();
        assert_eq!(result.status, *status, "{clip_id}: {result:#?}");
        assert_eq!(result.code, *code, "{clip_id}: {result:#?}");
        if code.is_some() {
            assert!(
                !result.reason.as_deref().unwrap_or("").is_empty(),
                "{clip_id}: a reason is given"
            );
        }
    }
    // The body that was not a request at all also rests in the DLQ, with the reason.
    let parked = peek_queue(&env.clients.sqs, env.outputs.get("ClipRequestsDeadLetterQueueUrl"))
        .await
        .unwrap();
    let wrong_types = parked
        .iter()
        .find(|m| m.body().unwrap_or("").contains(&id("wrong-types")))
        .expect("the malformed request is in the DLQ");
    assert_eq!(rejection_code(wrong_types), Some(Code::ClipInvalid));
}

#[tokio::test]
#[ignore = "needs the local stack: make test"]
async fn a_camera_api_that_is_down_is_retried_then_answered_failed_and_dead_lettered() {
    let env = env("clip-api-down").await;
    let clip_id = format!("down-{}", unique_suffix());
    let start = recent_second(300);
    let body = request_json(
        &clip_id,
        &format!("unavailable-{}", unique_suffix()),
        start,
        start + 1_000,
    );
    request_clip(&env.clients, env.queue(), &body).await.unwrap();
    let dlq = env.outputs.get("ClipRequestsDeadLetterQueueUrl");
    let started = Instant::now();
    loop {
        let parked = peek_queue(&env.clients.sqs, dlq).await.unwrap();
        if parked.iter().any(|m| m.body().unwrap_or("").contains(&clip_id)) {
            break;
        }
        assert!(started.elapsed() < WAIT, "the request never reached the DLQ");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Retried, never answered as if it were the request's fault; on the last delivery answered
    // once, as failed with the fault's code, before the request moved to the DLQ.
    let mut answered = env.results(&clip_id, |results| !results.is_empty()).await;
    answered.extend(take_clip_results(&env.tap, &clip_id).await.unwrap());
    assert_eq!(answered.len(), 1, "{answered:#?}");
    let answer = &answered[0];
    assert_eq!(
        (answer.status, answer.code),
        (ClipStatus::Failed, Some(Code::CameraApiUnavailable)),
        "{answer:#?}"
    );
    let reason = answer.reason.as_deref().unwrap_or("");
    assert!(reason.starts_with("gave up after 3 deliveries;"), "{reason}");
}
