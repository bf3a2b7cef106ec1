//! Clip-trimmer fixtures on the local stack: cameras and their recordings in the recordings
//! bucket (laid out as the camera API stand-in reads them), clip requests on the queue, and
//! a tap on clip results.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use shared::contracts::clip::{ClipRequest, ClipResult, ClipStatus};

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

/// A clip request as a user sends it (no retries yet).
pub fn request(clip_id: &str, camera_id: &str, start_ms: i64, end_ms: i64) -> ClipRequest {
    ClipRequest {
        clip_id: clip_id.to_owned(),
        camera_id: camera_id.to_owned(),
        start_timestamp_in_ms: start_ms,
        end_timestamp_in_ms: end_ms,
        retry_timestamps: Vec::new(),
        deadline_requeues: 0,
    }
}

/// [`request`] as the JSON body of a queue message.
pub fn request_json(clip_id: &str, camera_id: &str, start_ms: i64, end_ms: i64) -> String {
    serde_json::to_string(&request(clip_id, camera_id, start_ms, end_ms)).expect("a clip request serializes")
}

/// Whether `message` (anything on the results topic) is about the clip `clip_id`.
fn is_about(message: &Value, clip_id: &str) -> bool {
    message.get("clipId").and_then(Value::as_str) == Some(clip_id)
}

/// Messages about one clip, as clip results: an error naming the first that is not one (the
/// trimmer broke its contract).
fn as_clip_results(messages: Vec<Value>) -> Result<Vec<ClipResult>, BoxError> {
    messages
        .into_iter()
        .map(|message| {
            serde_json::from_value(message.clone()).map_err(|e| format!("not a clip result ({e}): {message:#}").into())
        })
        .collect()
}

/// Waits for the clip results with `clip_id` until `done` says enough, at most `timeout`.
pub async fn wait_for_clip_results(
    tap: &crate::Tap,
    clip_id: &str,
    timeout: Duration,
    mut done: impl FnMut(&[ClipResult]) -> bool,
) -> Result<Vec<ClipResult>, BoxError> {
    // `done` sees the messages that parse; the last step refuses any that did not.
    let parsed = |values: &[Value]| -> Vec<ClipResult> {
        values
            .iter()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    };
    let waited = tap
        .wait_for(timeout, |v| is_about(v, clip_id), |values| done(&parsed(values)))
        .await?;
    if !waited.complete {
        return Err(format!(
            "timed out after {timeout:?} waiting for clip {clip_id}; results so far: {:#?}",
            waited.values
        )
        .into());
    }
    as_clip_results(waited.values)
}

/// Polls the tap once for results about `clip_id` (see [`crate::Tap::take_json`]).
pub async fn take_clip_results(tap: &crate::Tap, clip_id: &str) -> Result<Vec<ClipResult>, BoxError> {
    as_clip_results(tap.take_json(|v| is_about(v, clip_id)).await?)
}

/// The status of each result, in arrival order.
pub fn statuses(results: &[ClipResult]) -> Vec<ClipStatus> {
    results.iter().map(|r| r.status).collect()
}
