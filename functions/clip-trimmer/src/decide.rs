//! What a request comes to, as pure functions of what was found out about it (the clock, the
//! recordings, the error): the [`Step`] to carry out and the result it reports. Nothing here
//! does I/O, so every rule is unit-tested with plain values.

use sha2::Digest;
use shared::contracts::clip::{ClipLink, ClipResult, ClipStatus, ThumbnailLinks};
use shared::{Code, ErrorKind, ProcessingError};

use crate::config::Config;
use crate::request::{self, ClipRequest};
use crate::schedule::{self, Coverage, Gap, NotCovered};

/// What one message comes to, before it is carried out.
#[derive(Debug)]
pub enum Step {
    /// Publish this result; the message is done.
    Report(ClipResult),
    /// Re-queue a copy (with this delay) after reporting `report`, if any.
    Requeue {
        request: ClipRequest,
        delay_secs: i32,
        report: Option<ClipResult>,
    },
    /// Hand the message back to the queue, to be delivered again after a backoff; on its last
    /// delivery, report [`given_up`] first (the message then rests in the DLQ).
    Retry { request: ClipRequest, err: ProcessingError },
}

/// The answer to a body that is not a request at all: whatever ids it carries, and why.
pub fn not_a_request(body: &str, err: &ProcessingError) -> ClipResult {
    let (clip_id, camera_id) = request::salvage_ids(body);
    ClipResult::for_ids(clip_id, camera_id, ClipStatus::Invalid).with_reason(err.code, err.reason.clone())
}

/// The answer to a request that cannot be made as asked (see [`request::validate`]).
pub fn invalid(request: &ClipRequest, err: &ProcessingError) -> ClipResult {
    ClipResult::for_request(request, ClipStatus::Invalid).with_reason(err.code, err.reason.clone())
}

/// Out of range when the range starts further back than recordings are kept: decided before
/// asking the camera API anything.
pub fn out_of_range(request: &ClipRequest, now_ms: i64, config: &Config) -> Option<Step> {
    if !schedule::is_out_of_range(request.start_timestamp_in_ms, now_ms, config.limits) {
        return None;
    }
    let days = config.limits.out_of_range_ms as f64 / 86_400_000.0;
    Some(Step::Report(
        ClipResult::for_request(request, ClipStatus::OutOfRange).with_reason(
            Code::ClipOutOfRange,
            format!("the range starts more than {days} days ago; recordings are not kept that long"),
        ),
    ))
}

/// A request whose recordings do not cover the range: pending (re-queued with this attempt
/// added to `retryTimestamps`) while it is young, not available once it is not.
pub fn not_covered(
    request: &ClipRequest,
    coverage: &Coverage,
    sent_ms: Option<i64>,
    now_ms: i64,
    config: &Config,
) -> Step {
    let first_seen = schedule::first_seen_ms(&request.retry_timestamps, sent_ms, now_ms);
    let uncovered: i64 = coverage.gaps.iter().map(Gap::duration_ms).sum();
    match schedule::not_covered(first_seen, now_ms, config.limits) {
        NotCovered::Pending => {
            let mut again = request.clone();
            again.retry_timestamps.push(now_ms);
            let mut report = ClipResult::for_request(request, ClipStatus::Pending).with_reason(
                Code::ClipPending,
                format!("recordings do not cover {uncovered} ms of the range yet; trying again later"),
            );
            report.gaps = coverage.gaps.clone();
            report.retry_timestamps = Some(again.retry_timestamps.clone());
            report.next_attempt_in_seconds = Some(config.requeue_delay_secs);
            Step::Requeue {
                request: again,
                delay_secs: config.requeue_delay_secs,
                report: Some(report),
            }
        }
        NotCovered::NotAvailable => {
            let mut report = ClipResult::for_request(request, ClipStatus::NotAvailable).with_reason(
                Code::ClipNotAvailable,
                format!(
                    "recordings still do not cover {uncovered} ms of the range after {} s",
                    config.limits.retry_limit_ms / 1000
                ),
            );
            report.gaps = coverage.gaps.clone();
            Step::Report(report)
        }
    }
}

/// The clip is stored: where, how it was made, and the holes it joins across.
pub fn available(
    request: &ClipRequest,
    clip: ClipLink,
    thumbnail: ThumbnailLinks,
    gaps: &[Gap],
    config: &Config,
) -> Step {
    let mut report = ClipResult::for_request(request, ClipStatus::Available);
    report.bucket = Some(config.destination_bucket.clone());
    report.clip = Some(clip);
    report.thumbnail = Some(thumbnail);
    report.gaps = gaps.to_vec();
    Step::Report(report)
}

/// Hands a request whose clip cannot be finished in this invocation to a fresh one, at most
/// `MAX_DEADLINE_REQUEUES` times.
pub fn hand_on(request: &ClipRequest, why: &str, config: &Config) -> Step {
    if request.deadline_requeues >= config.max_deadline_requeues {
        return Step::Report(ClipResult::for_request(request, ClipStatus::Failed).with_reason(
            Code::ClipTooSlow,
            format!(
                "{why}; handed on {} times already, which is the limit (MAX_DEADLINE_REQUEUES)",
                request.deadline_requeues
            ),
        ));
    }
    tracing::warn!(why, "handing the request on to a new invocation");
    let mut again = request.clone();
    again.deadline_requeues += 1;
    Step::Requeue {
        request: again,
        delay_secs: 0,
        report: None,
    }
}

/// A fault on the way: retried if retrying can help, otherwise reported as invalid (the request
/// can never succeed) or failed.
pub fn for_error(request: &ClipRequest, err: ProcessingError) -> Step {
    let status = match err.kind {
        ErrorKind::Retryable => {
            return Step::Retry {
                request: request.clone(),
                err,
            }
        }
        ErrorKind::Rejected => ClipStatus::Invalid,
        ErrorKind::Failed => ClipStatus::Failed,
    };
    Step::Report(ClipResult::for_request(request, status).with_reason(err.code, err.reason))
}

/// The answer on a request's last delivery (`MAX_RECEIVE_COUNT`) to a fault that retrying could
/// have fixed: `CLIP_FAILED` with the fault's code, saying that the request is kept in the DLQ
/// (where `make redrive` puts it back to work once the fault is fixed), so that no request rests
/// there without its requester being told.
pub fn given_up(request: &ClipRequest, err: &ProcessingError, deliveries: u32) -> ClipResult {
    let err = err.given_up_after(deliveries);
    ClipResult::for_request(request, ClipStatus::Failed).with_reason(err.code, err.reason)
}

/// The redelivery delay after the `receives`-th failed delivery: `base`, doubled each time,
/// at most 900 s (SQS's longest visibility change that keeps the message in reach).
pub fn backoff_secs(base: i32, receives: i32) -> i32 {
    let exponent = (receives - 1).clamp(0, 10) as u32;
    base.max(1).saturating_mul(2i32.saturating_pow(exponent)).min(900)
}

/// Identifies what a clip was made from: the range and the recordings (keys and spans). A clip
/// stored with the same fingerprint is this request's clip and is reused, not made again.
pub fn fingerprint(request: &ClipRequest, coverage: &Coverage) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(format!(
        "{}|{}|{}|{}",
        request.camera_id, request.clip_id, request.start_timestamp_in_ms, request.end_timestamp_in_ms
    ));
    for segment in &coverage.segments {
        hasher.update(format!(
            "|{}|{}|{}|{}",
            segment.recording.key, segment.recording.start_ms, segment.from_ms, segment.to_ms
        ));
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use shared::contracts::clip::{CappedSize, ClipMode};

    use super::*;
    use crate::config::tests::config;
    use crate::schedule::{coverage, Recording};

    const MINUTE: i64 = 60_000;

    /// A minute-long request starting at 10:00 on 2026-11-21 (UTC).
    fn request() -> ClipRequest {
        ClipRequest {
            clip_id: "1763719200000".into(),
            camera_id: "cam-1".into(),
            start_timestamp_in_ms: 1_763_719_200_000,
            end_timestamp_in_ms: 1_763_719_260_000,
            retry_timestamps: Vec::new(),
            deadline_requeues: 0,
        }
    }

    /// The request's range, covered by recordings up to `covered_ms` into it.
    fn covered_up_to(covered_ms: i64) -> Coverage {
        let request = request();
        let recording = Recording {
            start_ms: request.start_timestamp_in_ms - MINUTE,
            end_ms: request.start_timestamp_in_ms + covered_ms,
            key: "recordings/front door/front door_20261121T095900.mp4".into(),
        };
        coverage(
            vec![recording],
            request.start_timestamp_in_ms,
            request.end_timestamp_in_ms,
        )
    }

    /// The trimmer's results are the contract's fixtures: the fixtures in `shared/fixtures` are
    /// what the trimmer sends, not what someone thought it sends.
    #[track_caller]
    fn assert_is_fixture(message: &impl serde::Serialize, fixture: &str) {
        let path = format!("{}/../../shared/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
        let sent = serde_json::to_value(message).unwrap();
        assert_eq!(sent, expected, "what the trimmer sends differs from {fixture}");
    }

    fn report(step: Step) -> ClipResult {
        match step {
            Step::Report(result) => result,
            other => panic!("not a report: {other:?}"),
        }
    }

    #[test]
    fn a_range_older_than_recordings_are_kept_is_out_of_range() {
        let config = config(&[]);
        let limit = config.limits.out_of_range_ms;
        let start = request().start_timestamp_in_ms;
        assert!(out_of_range(&request(), start + limit, &config).is_none());
        let result = report(out_of_range(&request(), start + limit + 1, &config).unwrap());
        assert_is_fixture(&result, "clip-result-out-of-range.json");
    }

    #[test]
    fn an_uncovered_young_request_is_pending_and_requeued() {
        let config = config(&[("SQS_TIMEOUT", "90")]);
        let mut request = request();
        request.retry_timestamps = vec![request.end_timestamp_in_ms + 30_000];
        let now = request.end_timestamp_in_ms + 120_000;
        let step = not_covered(&request, &covered_up_to(45_000), None, now, &config);
        let Step::Requeue {
            request: again,
            delay_secs,
            report: Some(result),
        } = step
        else {
            panic!("not a re-queue: {step:?}");
        };
        assert_eq!(delay_secs, 90);
        assert_eq!(again.retry_timestamps, [request.end_timestamp_in_ms + 30_000, now]);
        assert_eq!(result.retry_timestamps.as_ref(), Some(&again.retry_timestamps));
        assert_is_fixture(&result, "clip-result-pending.json");
        assert_is_fixture(&again, "clip-request-requeued.json");
    }

    #[test]
    fn an_uncovered_request_past_the_retry_limit_is_not_available() {
        let config = config(&[]);
        let request = request();
        let sent = request.end_timestamp_in_ms;
        let young = not_covered(
            &request,
            &covered_up_to(45_000),
            Some(sent),
            sent + 15 * MINUTE - 1,
            &config,
        );
        assert!(matches!(young, Step::Requeue { .. }), "{young:?}");
        let step = not_covered(
            &request,
            &covered_up_to(45_000),
            Some(sent),
            sent + 15 * MINUTE,
            &config,
        );
        assert_is_fixture(&report(step), "clip-result-not-available.json");
    }

    #[test]
    fn a_stored_clip_is_available() {
        let config = config(&[]);
        let request = request();
        let clip_key = config.clip_key(&request);
        let thumbnail_key = config.thumbnail_key(&request, "{size}");
        let clip = ClipLink {
            url: config.public_url(&clip_key),
            key: clip_key,
            mode: ClipMode::SmartCut,
            mode_reason: None,
            duration_ms: 60_000,
            frames: 1500,
        };
        let thumbnail = ThumbnailLinks {
            url: config.public_url(&thumbnail_key),
            key: thumbnail_key,
            sizes: vec![300, 640, 1280],
            capped: vec![
                CappedSize {
                    requested: 1500,
                    width: 1280,
                },
                CappedSize {
                    requested: 3000,
                    width: 1280,
                },
            ],
        };
        let gaps = [Gap {
            start_timestamp_in_ms: request.start_timestamp_in_ms + 30_000,
            end_timestamp_in_ms: request.start_timestamp_in_ms + 30_400,
        }];
        let result = report(available(&request, clip.clone(), thumbnail.clone(), &gaps, &config));
        assert_is_fixture(&result, "clip-result-available.json");
        let re_encoded = ClipLink {
            mode: ClipMode::ReEncode,
            mode_reason: Some("smart cut re-encodes the edges with H.264; the recordings are hevc".into()),
            ..clip
        };
        let uncapped = ThumbnailLinks {
            sizes: vec![300, 640, 1500, 3000],
            capped: vec![],
            ..thumbnail
        };
        let result = report(available(&request, re_encoded, uncapped, &[], &config));
        assert_is_fixture(&result, "clip-result-available-re-encoded.json");
    }

    #[test]
    fn faults_are_retried_and_the_rest_reported() {
        let unknown_camera =
            ProcessingError::rejected(Code::CameraNotFound, "the camera API knows no camera \"cam-1\"");
        assert_is_fixture(
            &report(for_error(&request(), unknown_camera)),
            "clip-result-invalid.json",
        );
        let corrupt = ProcessingError::failed(
            Code::RecordingCorrupt,
            "recording recordings/front door/front door_20261121T095900.mp4: ffprobe cannot read it: moov atom not found",
        );
        assert_is_fixture(&report(for_error(&request(), corrupt)), "clip-result-failed.json");
        let down = ProcessingError::retryable(Code::CameraApiUnavailable, "GET /cameras/{cameraId} answered 503");
        let Step::Retry { err, .. } = for_error(&request(), down) else {
            panic!("a camera API that is down is retried");
        };
        let last = given_up(&request(), &err, 3);
        assert_eq!(
            (last.status, last.code),
            (ClipStatus::Failed, Some(Code::CameraApiUnavailable))
        );
        let reason = last.reason.unwrap();
        assert!(reason.starts_with("gave up after 3 deliveries;"), "{reason}");
        assert!(reason.ends_with("GET /cameras/{cameraId} answered 503"), "{reason}");
    }

    #[test]
    fn what_is_not_a_request_is_answered_with_the_ids_it_carries() {
        let body = r#"{"clipId": "c9", "cameraId": "cam-1", "startTimestampInMs": "soon"}"#;
        let err = request::parse(body).unwrap_err();
        assert_is_fixture(&not_a_request(body, &err), "clip-result-invalid-not-a-request.json");
    }

    #[test]
    fn a_request_is_handed_on_until_the_limit_then_fails() {
        let config = config(&[("MAX_DEADLINE_REQUEUES", "2")]);
        assert_is_fixture(&request(), "clip-request.json");
        let mut request = request();
        request.deadline_requeues = 1;
        match hand_on(&request, "too little time left", &config) {
            Step::Requeue {
                request: again,
                delay_secs: 0,
                report: None,
            } => {
                assert_eq!(again.deadline_requeues, 2);
                assert_is_fixture(&again, "clip-request-handed-on.json");
            }
            other => panic!("not handed on: {other:?}"),
        }
        request.deadline_requeues = 2;
        let result = report(hand_on(&request, "too little time left", &config));
        assert_eq!(result.status, ClipStatus::Failed);
        assert_eq!(result.code, Some(Code::ClipTooSlow));
    }

    #[test]
    fn retry_delays_grow_and_stay_within_sqs_limits() {
        let delays: Vec<_> = (1..=8).map(|n| backoff_secs(10, n)).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 900]);
        assert_eq!(backoff_secs(10, 0), 10);
        assert_eq!(backoff_secs(10, 1_000), 900);
    }

    #[test]
    fn a_clip_is_reused_only_for_the_same_range_and_recordings() {
        let made_from = fingerprint(&request(), &covered_up_to(60_000));
        assert_eq!(fingerprint(&request(), &covered_up_to(60_000)), made_from);
        assert_ne!(
            fingerprint(&request(), &covered_up_to(59_000)),
            made_from,
            "other recordings"
        );
        let mut later = request();
        later.end_timestamp_in_ms += 1;
        assert_ne!(fingerprint(&later, &covered_up_to(60_000)), made_from, "another range");
    }
}
