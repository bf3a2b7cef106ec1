//! Clip-trimmer fixtures on the local stack: cameras and their recordings in the recordings
//! bucket (laid out as the camera API stand-in reads them), clip requests on the queue, and
//! a tap on clip results.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use local_services::camera_api::{camera_marker_key, name_format, RECORDINGS_DIR};
pub use media_fixtures::{make_recordings, Recorder};

use crate::{BoxError, Clients};

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
    done: impl FnMut(&[Value]) -> bool,
) -> Result<Vec<Value>, BoxError> {
    let waited = tap
        .wait_for(
            timeout,
            |v| v.get("clipId").and_then(Value::as_str) == Some(clip_id),
            done,
        )
        .await?;
    if !waited.complete {
        return Err(format!(
            "timed out after {timeout:?} waiting for clip {clip_id}; results so far: {:#?}",
            waited.values
        )
        .into());
    }
    Ok(waited.values)
}

/// The status of each result, in arrival order.
pub fn statuses(results: &[Value]) -> Vec<&str> {
    results.iter().filter_map(|r| r["status"].as_str()).collect()
}
