//! Clip-trimmer fixtures on the local stack: cameras and their recordings in the recordings
//! bucket (laid out as the camera API stand-in reads them), clip requests on the queue, and
//! a tap on clip results.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::services::camera_api::{camera_marker_key, name_format, RECORDINGS_DIR};
use crate::{BoxError, Clients};

/// A camera's recorder: `count` consecutive recordings of `seconds_each`, the first starting at
/// `start_ms`, cut from one continuous stream (so content runs on across recordings).
#[derive(Debug, Clone, Copy)]
pub struct Recorder {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub gop_seconds: u32,
    pub seconds_each: u32,
    pub count: u32,
    pub start_ms: i64,
    /// x264 preset of the recorder (`veryfast`; `ultrafast` makes long recordings quickly).
    pub preset: &'static str,
}

/// Makes the recordings with ffmpeg (H.264, AAC, faststart) as files `<name>-000.mp4`,
/// `<name>-001.mp4`, … in `work`, and returns their paths.
pub async fn make_recordings(recorder: Recorder, name: &str, work: &Path) -> Result<Vec<PathBuf>, BoxError> {
    std::fs::create_dir_all(work)?;
    let total = recorder.seconds_each * recorder.count;
    let gop = recorder.fps * recorder.gop_seconds;
    let pattern = work.join(format!("{name}-%03d.mp4"));
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={}x{}:rate={}",
            recorder.width, recorder.height, recorder.fps
        ))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t"])
        .arg(total.to_string())
        .args([
            "-c:v",
            "libx264",
            "-preset",
            recorder.preset,
            "-pix_fmt",
            "yuv420p",
            "-g",
        ])
        .arg(gop.to_string())
        .args(["-keyint_min"])
        .arg(gop.to_string())
        .args([
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "segment",
            "-segment_time",
        ])
        .arg(recorder.seconds_each.to_string())
        .args([
            "-reset_timestamps",
            "1",
            "-segment_format_options",
            "movflags=+faststart",
        ])
        .arg(&pattern)
        .status()
        .await?;
    if !status.success() {
        return Err(format!("ffmpeg could not make the recordings ({status})").into());
    }
    Ok((0..recorder.count)
        .map(|i| work.join(format!("{name}-{i:03}.mp4")))
        .collect())
}

/// Makes the recordings ([`make_recordings`]) and uploads them as
/// `recordings/<alias>/<alias>_<start>.mp4` with their length in `duration-ms`, plus the
/// camera's marker. Returns the keys.
pub async fn record(
    clients: &Clients,
    bucket: &str,
    camera_id: &str,
    alias: &str,
    recorder: Recorder,
    work: &Path,
) -> Result<Vec<String>, BoxError> {
    let files = make_recordings(recorder, alias, work).await?;
    let names = name_format();
    let mut keys = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let start = recorder.start_ms + i as i64 * i64::from(recorder.seconds_each) * 1000;
        let key = format!("{RECORDINGS_DIR}/{alias}/{}", names.name_for(alias, start));
        let body = aws_sdk_s3::primitives::ByteStream::from_path(file).await?;
        clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("video/mp4")
            .metadata("duration-ms", (i64::from(recorder.seconds_each) * 1000).to_string())
            .body(body)
            .send()
            .await?;
        keys.push(key);
    }
    crate::upload_bytes(&clients.s3, bucket, &camera_marker_key(alias, camera_id), Vec::new()).await?;
    Ok(keys)
}

/// Sends a clip request body (JSON or the seed's Python-dict style) to the requests queue.
pub async fn request_clip(clients: &Clients, queue_url: &str, body: &str) -> Result<(), BoxError> {
    clients
        .sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await?;
    Ok(())
}

/// A JSON clip request.
pub fn request_json(clip_id: &str, camera_id: &str, start_ms: i64, end_ms: i64) -> String {
    serde_json::json!({
        "clipId": clip_id,
        "cameraId": camera_id,
        "startTimestampInMs": start_ms,
        "endTimestampInMs": end_ms,
        "retryTimestamps": [],
    })
    .to_string()
}

/// Waits for the clip results with `clip_id` until `done` says enough, at most `timeout`.
pub async fn wait_for_clip_results(
    tap: &crate::Tap,
    clip_id: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Value]) -> bool,
) -> Result<Vec<Value>, BoxError> {
    let started = Instant::now();
    let mut results = Vec::new();
    loop {
        for body in tap
            .take_json(|v| v.get("clipId").and_then(Value::as_str) == Some(clip_id))
            .await?
        {
            results.push(body);
        }
        if done(&results) {
            return Ok(results);
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "timed out after {timeout:?} waiting for clip {clip_id}; results so far: {results:#?}"
            )
            .into());
        }
    }
}

/// The status of each result, in arrival order.
pub fn statuses(results: &[Value]) -> Vec<&str> {
    results.iter().filter_map(|r| r["status"].as_str()).collect()
}
