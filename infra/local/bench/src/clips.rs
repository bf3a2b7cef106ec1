//! Clip-trimmer figures, measured in-process through the trimmer's own library against the
//! local stack (S3, SNS and the camera API stand-in), so the byte counts are what the function
//! itself fetched:
//!
//! 1. bytes read from the origin / clip bytes, for a 60 s clip across two 10-minute recordings
//!    (seed 002's service downloads both recordings whole);
//! 2. smart-cut time / full re-encode time for that clip, with each clip's first frame checked
//!    against the source (offset in frames);
//! 3. thumbnail time 100 s into a recording / 5 s into it (input seeking keeps it flat).

use std::path::Path;
use std::time::Duration;

use clip_trimmer::cut::Mode;
use clip_trimmer::request::ClipRequest;
use clip_trimmer::schedule::{coverage, Recording};
use clip_trimmer::{Config, MadeClip, Trimmer};
use harness::clips::{record, Recorder};
use harness::media_checks::first_frame_offset;
use harness::{unique_suffix, BoxError, Clients, StackOutputs};
use local_services::{camera_api, Ports};
use shared::config::EnvReader;
use shared::ffmpeg::Deadline;

const MINUTES: u32 = 10;
const FPS: u32 = 25;

pub async fn figures(outputs: &StackOutputs, clients: &Clients, work: &Path) -> Result<(), BoxError> {
    println!("== clip trimmer: two {MINUTES}-minute recordings (1280x720, {FPS} fps, 2 s GOP, x264 ultrafast) made with ffmpeg");
    let suffix = unique_suffix();
    let camera_id = format!("bench-cam-{suffix}");
    let alias = format!("bench-{suffix}");
    let start_ms = (chrono::Utc::now().timestamp_millis() / 1000 - 3600) * 1000;
    let recorder = Recorder {
        width: 1280,
        height: 720,
        fps: FPS,
        gop_seconds: 2,
        seconds_each: MINUTES * 60,
        count: 2,
        start_ms,
        preset: "ultrafast",
    };
    let bucket = outputs.get("RecordingsBucketName");
    let recordings_dir = work.join("clip-recordings");
    let keys = record(clients, bucket, &camera_id, &alias, recorder, &recordings_dir).await?;
    let length_ms = i64::from(MINUTES) * 60_000;
    let recordings: Vec<Recording> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Recording {
            start_ms: start_ms + i as i64 * length_ms,
            end_ms: start_ms + (i as i64 + 1) * length_ms,
            key: key.clone(),
        })
        .collect();
    let sdk = shared::clients::load_sdk_config().await;
    let trimmer = Trimmer::new(&sdk, config(outputs, work)?)?;
    let clip = |id: &str, from: i64, to: i64| ClipRequest {
        clip_id: format!("{id}-{suffix}"),
        camera_id: camera_id.clone(),
        start_timestamp_in_ms: from,
        end_timestamp_in_ms: to,
        retry_timestamps: Vec::new(),
        deadline_requeues: 0,
    };
    let make = |request: ClipRequest, mode: Option<Mode>| {
        let trimmer = &trimmer;
        let alias = alias.clone();
        let covered = coverage(
            recordings.clone(),
            request.start_timestamp_in_ms,
            request.end_timestamp_in_ms,
        );
        async move {
            trimmer
                .make_clip(
                    &request,
                    &alias,
                    &covered,
                    Deadline::after(Duration::from_secs(900)),
                    mode,
                )
                .await
                .map_err(|e| format!("{}: {}", e.code, e.reason))
        }
    };

    // A 60 s clip from 9:30.37 into the first recording to 0:30.37 into the second: mid-GOP
    // at both ends.
    let from = start_ms + length_ms - 29_630;
    let to = from + 60_000;
    let smart = make(clip("smart", from, to), None).await?;
    let full = make(
        clip("full", from, to),
        Some(Mode::ReEncode {
            reason: "benchmark baseline".into(),
        }),
    )
    .await?;
    let source = recordings_dir.join(format!("{alias}-000.mp4"));
    let offset_secs = (from - start_ms) as f64 / 1000.0;
    let smart_offset = offset_of(clients, outputs, &smart, &source, offset_secs, work).await?;
    let full_offset = offset_of(clients, outputs, &full, &source, offset_secs, work).await?;

    let whole: u64 = recordings_dir
        .read_dir()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&alias))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "   bytes read from the origin / clip bytes: {} / {} = {:.3}  (goal ≤ 1.5; downloading both recordings whole: {} = {:.1})",
        smart.origin_bytes,
        smart.clip_bytes,
        smart.origin_bytes as f64 / smart.clip_bytes as f64,
        whole,
        whole as f64 / smart.clip_bytes as f64
    );
    println!(
        "   smart cut / full re-encode: {:.2} s / {:.2} s = {:.3}  ({:.1}× faster; goal ≥ 5×); first frame off by {} / {} frames (goal ±1)",
        smart.cut_time.as_secs_f64(),
        full.cut_time.as_secs_f64(),
        smart.cut_time.as_secs_f64() / full.cut_time.as_secs_f64(),
        full.cut_time.as_secs_f64() / smart.cut_time.as_secs_f64(),
        smart_offset,
        full_offset
    );

    // Thumbnails of 1 s clips 5 s and 100 s into the first recording (median of 5 each).
    let at = |seconds: i64, id: String| {
        let from = start_ms + seconds * 1000;
        make(clip(&id, from, from + 1_000), None)
    };
    let mut early = Vec::new();
    let mut late = Vec::new();
    for run in 0..5 {
        early.push(at(5, format!("thumb5-{run}")).await?.thumbnail_time);
        late.push(at(100, format!("thumb100-{run}")).await?.thumbnail_time);
    }
    let (early, late) = (super::median(&mut early), super::median(&mut late));
    println!(
        "   thumbnail time at 100 s / at 5 s: {:.1} ms / {:.1} ms = {:.3}  (goal ≤ 1.5)",
        late.as_secs_f64() * 1000.0,
        early.as_secs_f64() * 1000.0,
        late.as_secs_f64() / early.as_secs_f64()
    );
    Ok(())
}

fn config(outputs: &StackOutputs, work: &Path) -> Result<Config, BoxError> {
    let ports = Ports::from_env();
    let camera_api_url = local_services::url(ports.camera_api);
    let recordings_url = camera_api::recordings_url(ports);
    let work = work.display().to_string();
    let env = EnvReader::from_pairs([
        ("CAM_SERVICES_URL", camera_api_url.as_str()),
        ("RECORDINGS_URL", recordings_url.as_str()),
        ("CLIP_URL", "http://127.0.0.1/"),
        ("S3_BUCKET_ORIGIN", outputs.get("RecordingsBucketName")),
        ("S3_BUCKET_ORIGIN_DIR", camera_api::RECORDINGS_DIR),
        ("S3_BUCKET_DESTINATION", outputs.get("OutputBucketName")),
        ("AWS_SNS_TOPIC", outputs.get("ResultsTopicArn")),
        ("AWS_SQS_QUEUE_URL", outputs.get("ClipRequestsQueueUrl")),
        ("DEAD_LETTER_QUEUE_URL", outputs.get("ClipRequestsDeadLetterQueueUrl")),
        ("CLIP_DOWNLOAD_DEST", work.as_str()),
    ]);
    Ok(Config::from_env(env)?)
}

async fn offset_of(
    clients: &Clients,
    outputs: &StackOutputs,
    made: &MadeClip,
    source: &Path,
    seconds: f64,
    work: &Path,
) -> Result<i32, BoxError> {
    let local = work.join(format!("{}.mp4", made.clip.mode));
    shared::storage::download_to_file(&clients.s3, outputs.get("OutputBucketName"), &made.clip.key, &local)
        .await
        .map_err(|e| e.reason)?;
    Ok(first_frame_offset(&local, source, seconds, 1.0 / f64::from(FPS)))
}
