//! The clip-trimmer part of `devstack demo`: consecutive recordings of a camera in the
//! recordings bucket (2 s GOPs), one request starting mid-GOP across two of them, and one that
//! ends in the future, which is answered `CLIP_PENDING`, re-queued, and made once its time has
//! come.

use std::path::Path;
use std::time::Duration;

use harness::clips::{record, request_clip, request_json, statuses, wait_for_clip_results, Recorder};
use harness::{unique_suffix, BoxError, Clients, StackOutputs, Tap};
use shared::contracts::clip::{ClipResult, ClipStatus};

pub async fn run(outputs: &StackOutputs, clients: &Clients, work: &Path) -> Result<(), BoxError> {
    let suffix = unique_suffix();
    let camera_id = format!("demo-cam-{suffix}");
    let alias = format!("lobby-{suffix}");
    let now = chrono::Utc::now().timestamp_millis();
    let start = (now / 1000 - 25) * 1000;
    let recorder = Recorder {
        width: 1280,
        height: 720,
        fps: 25,
        gop_seconds: 2,
        seconds_each: 10,
        // Up to 35 s from now: the recorder "has already written" the future request's range
        // (the stand-in lists what is in the bucket), so that request completes once its time
        // has come.
        count: 6,
        start_ms: start,
        preset: "veryfast",
    };
    let bucket = outputs.get("RecordingsBucketName");
    println!("clips 1/3  recording camera {camera_id} ({alias}): 6 × 10 s at 1280x720, 2 s GOPs, into s3://{bucket}/recordings/{alias}/");
    record(clients, bucket, &camera_id, &alias, recorder, &work.join("recordings")).await?;

    let tap = Tap::subscribe(clients, outputs.get("ResultsTopicArn"), "demo-clips").await?;
    let queue = outputs.get("ClipRequestsQueueUrl");
    let across = format!("across-{suffix}");
    let future = format!("future-{suffix}");
    let (from, to) = (start + 5_500, start + 14_300);
    println!("clips 2/3  requesting {across}: 5.5 s into the first recording (mid-GOP) to 4.3 s into the second");
    request_clip(clients, queue, &request_json(&across, &camera_id, from, to)).await?;
    let future_end = chrono::Utc::now().timestamp_millis() + 3_000;
    println!("           requesting {future}: ends 3 s in the future");
    request_clip(
        clients,
        queue,
        &request_json(&future, &camera_id, future_end - 6_000, future_end),
    )
    .await?;

    println!("clips 3/3  results:");
    let wait = Duration::from_secs(240);
    let done = |r: &[ClipResult]| r.iter().any(|r| r.status != ClipStatus::Pending);
    let across_results = wait_for_clip_results(&tap, &across, wait, done).await?;
    show(&across, &across_results);
    let future_results = wait_for_clip_results(&tap, &future, wait, done).await?;
    show(&future, &future_results);
    tap.close().await;
    for results in [&across_results, &future_results] {
        if results.last().map(|r| r.status) != Some(ClipStatus::Available) {
            return Err(format!("a clip was not made: {results:#?}").into());
        }
    }
    Ok(())
}

fn show(clip_id: &str, results: &[ClipResult]) {
    let statuses: Vec<&str> = statuses(results).into_iter().map(ClipStatus::as_str).collect();
    println!("           {clip_id}: {}", statuses.join(" → "));
    for result in results {
        match result.status {
            ClipStatus::Pending => println!(
                "             pending: re-queued with retryTimestamps {:?} and a delay of {} s",
                result.retry_timestamps.as_deref().unwrap_or_default(),
                result.next_attempt_in_seconds.unwrap_or_default()
            ),
            ClipStatus::Available => {
                if let Some(clip) = &result.clip {
                    println!(
                        "             clip ({}, {} frames, {} ms): s3://{}/{}\n               {}",
                        clip.mode,
                        clip.frames,
                        clip.duration_ms,
                        result.bucket.as_deref().unwrap_or(""),
                        clip.key,
                        clip.url
                    );
                }
                if let Some(thumbnail) = &result.thumbnail {
                    let capped: Vec<String> = thumbnail
                        .capped
                        .iter()
                        .map(|c| format!("{}→{}", c.requested, c.width))
                        .collect();
                    println!(
                        "             thumbnails {:?} (capped: {}): {}",
                        thumbnail.sizes,
                        capped.join(", "),
                        thumbnail.url
                    );
                }
            }
            status => println!(
                "             {status}: {} {}",
                result.reason_code(),
                result.reason.as_deref().unwrap_or("")
            ),
        }
    }
}
