//! The clip trimmer's messages: the request it reads from its queue (and re-queues) and the
//! result it publishes on the results topic. Both keep the original service's field names
//! (camelCase ids and `…TimestampInMs`), which is why they are not versioned like the
//! pipeline's own contracts: the deployed producers and readers know them as they are.
//!
//! Fixtures: `clip-request*.json` and `clip-result-*.json` under `shared/fixtures/`.

use serde::{Deserialize, Serialize};

use crate::publish::Attribute;
use crate::wire::wire_enum;
use crate::Code;

/// The `job` message attribute of every clip result, beside `status` (and `reason` when there is
/// a code), so a subscription can filter clip results from the pipeline's.
pub const JOB: &str = "clip";

wire_enum! {
    /// What a clip request came to: every delivery of a request is answered with one of these.
    /// A status that is also a result's code (all but `CLIP_AVAILABLE`) takes its spelling from
    /// [`Code`], so the two cannot drift apart.
    pub enum ClipStatus {
        /// The clip and its thumbnails are stored (`bucket`, `clip` and `thumbnail` say where).
        Available = "CLIP_AVAILABLE",
        /// The recordings do not cover the range yet and the request is younger than
        /// `SQS_RETRY_LIMIT`: it is re-queued with a delay of `SQS_TIMEOUT`
        /// (`nextAttemptInSeconds`), with this attempt added to `retryTimestamps`.
        Pending = Code::ClipPending.as_str(),
        /// The recordings still do not cover the range after `SQS_RETRY_LIMIT`.
        NotAvailable = Code::ClipNotAvailable.as_str(),
        /// The range starts more than `OUT_OF_RANGE_LIMIT` ago (recordings are not kept longer).
        OutOfRange = Code::ClipOutOfRange.as_str(),
        /// The request is malformed or impossible, or names an unknown camera.
        Invalid = Code::ClipInvalid.as_str(),
        /// A recording is missing, corrupt or unusable, or ffmpeg failed.
        Failed = Code::ClipFailed.as_str(),
    }
}

wire_enum! {
    /// How a clip was cut (`clip.mode`).
    pub enum ClipMode {
        /// Whole GOPs stream-copied, only the partial GOPs at the edges re-encoded.
        SmartCut = "smart-cut",
        /// Every frame re-encoded (`clip.modeReason` says why).
        ReEncode = "re-encode",
    }
}

/// One clip request as it arrives on the queue (the original service's message, plus
/// `deadlineRequeues`), and as the trimmer re-queues it. Unknown fields are ignored, as they
/// always were: a producer adding a field must not have its requests refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClipRequest {
    pub clip_id: String,
    pub camera_id: String,
    pub start_timestamp_in_ms: i64,
    pub end_timestamp_in_ms: i64,
    /// When the request was re-queued as pending (epoch ms), oldest first.
    #[serde(default)]
    pub retry_timestamps: Vec<i64>,
    /// Times the request was handed on because an invocation's deadline was too close to finish
    /// it (ours; absent in requests from users). Bounded by `MAX_DEADLINE_REQUEUES`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deadline_requeues: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ClipRequest {
    pub fn duration_ms(&self) -> i64 {
        self.end_timestamp_in_ms - self.start_timestamp_in_ms
    }
}

/// The outcome of a request, as published on the results topic (the original service's message,
/// plus what explains it). The ids and the range are `null` only in the answer to a message that
/// was not a request at all, and carry what could be read from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClipResult {
    pub clip_id: Option<String>,
    pub camera_id: Option<String>,
    pub start_timestamp_in_ms: Option<i64>,
    pub end_timestamp_in_ms: Option<i64>,
    pub status: ClipStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipLink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<ThumbnailLinks>,
    /// A stable code for every status but `CLIP_AVAILABLE`: the status's own name for the
    /// trimmer's verdicts (`CLIP_PENDING`, `CLIP_INVALID`, …), else what went wrong
    /// (`RECORDING_MISSING`, `CAMERA_NOT_FOUND`, `CORRUPT_INPUT`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Holes between recordings inside the range (the clip joins across them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_timestamps: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_in_seconds: Option<i32>,
}

/// Where the clip is, and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClipLink {
    pub url: String,
    pub key: String,
    pub mode: ClipMode,
    /// Why the clip was re-encoded whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_reason: Option<String>,
    pub duration_ms: i64,
    pub frames: u32,
}

/// Where the thumbnails are: one PNG per width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailLinks {
    /// With `{size}` standing for each of `sizes`.
    pub url: String,
    pub key: String,
    pub sizes: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capped: Vec<CappedSize>,
}

/// A requested thumbnail width that the recording is too small for: made at `width` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CappedSize {
    pub requested: u32,
    pub width: u32,
}

/// A part of the requested range that no recording covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gap {
    pub start_timestamp_in_ms: i64,
    pub end_timestamp_in_ms: i64,
}

impl Gap {
    pub fn duration_ms(&self) -> i64 {
        self.end_timestamp_in_ms - self.start_timestamp_in_ms
    }
}

impl ClipResult {
    /// A result about `request`, with nothing but its ids, range and `status`.
    pub fn for_request(request: &ClipRequest, status: ClipStatus) -> Self {
        ClipResult {
            start_timestamp_in_ms: Some(request.start_timestamp_in_ms),
            end_timestamp_in_ms: Some(request.end_timestamp_in_ms),
            ..Self::for_ids(Some(request.clip_id.clone()), Some(request.camera_id.clone()), status)
        }
    }

    /// A result for what may not even be a request: only the ids that could be read from it.
    pub fn for_ids(clip_id: Option<String>, camera_id: Option<String>, status: ClipStatus) -> Self {
        ClipResult {
            clip_id,
            camera_id,
            start_timestamp_in_ms: None,
            end_timestamp_in_ms: None,
            status,
            bucket: None,
            clip: None,
            thumbnail: None,
            code: None,
            reason: None,
            gaps: Vec::new(),
            retry_timestamps: None,
            next_attempt_in_seconds: None,
        }
    }

    pub fn with_reason(mut self, code: Code, reason: impl Into<String>) -> Self {
        self.code = Some(code);
        self.reason = Some(reason.into());
        self
    }

    /// The code as spelled, or `""` for a result without one: for logs and outcome keys.
    pub fn reason_code(&self) -> &'static str {
        self.code.map_or("", Code::as_str)
    }

    /// SNS message attributes, so subscribers can filter (`job`, `status`, `reason`).
    pub fn attributes(&self) -> Vec<(&'static str, Attribute)> {
        let mut attributes = vec![
            ("job", Attribute::Text(JOB.to_owned())),
            ("status", Attribute::Text(self.status.as_str().to_owned())),
        ];
        if let Some(code) = self.code {
            attributes.push(("reason", Attribute::Text(code.as_str().to_owned())));
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status has its fixture (the table in `contracts.rs` checks each fixture against
    /// its type): a new status without one fails here.
    #[test]
    fn every_status_has_a_fixture() {
        for status in ClipStatus::ALL {
            let name = status
                .as_str()
                .trim_start_matches("CLIP_")
                .to_ascii_lowercase()
                .replace('_', "-");
            let result: ClipResult =
                serde_json::from_value(crate::contracts::fixture(&format!("clip-result-{name}.json")))
                    .unwrap_or_else(|e| panic!("clip-result-{name}.json: {e}"));
            assert_eq!(result.status, *status);
        }
    }

    #[test]
    fn names_read_back_as_what_they_are_written() {
        use crate::wire::{assert_wire_enum, Case};
        assert_wire_enum(
            ClipStatus::ALL,
            ClipStatus::as_str,
            Case::PrefixedScreamingSnake("CLIP_"),
        );
        assert_wire_enum(ClipMode::ALL, ClipMode::as_str, Case::Kebab);
        let err = serde_json::from_str::<ClipStatus>(r#""CLIP_MAYBE""#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `CLIP_MAYBE`"), "{err}");
    }

    /// Every status but `CLIP_AVAILABLE` is also the code of the results that carry it; no other
    /// status is a code.
    #[test]
    fn the_verdict_statuses_are_codes() {
        for status in ClipStatus::ALL {
            let is_code = status.as_str().parse::<Code>().is_ok();
            assert_eq!(is_code, *status != ClipStatus::Available, "{status}");
        }
    }

    #[test]
    fn results_carry_filterable_attributes() {
        let request: ClipRequest = serde_json::from_str(
            r#"{"clipId":"c1","cameraId":"cam-1","startTimestampInMs":1000,"endTimestampInMs":5000}"#,
        )
        .unwrap();
        let result = ClipResult::for_request(&request, ClipStatus::Pending).with_reason(Code::ClipPending, "later");
        let attributes = result.attributes();
        assert!(attributes.contains(&("job", Attribute::Text("clip".into()))));
        assert!(attributes.contains(&("status", Attribute::Text("CLIP_PENDING".into()))));
        assert!(attributes.contains(&("reason", Attribute::Text("CLIP_PENDING".into()))));
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["status"], "CLIP_PENDING");
        assert!(json.get("clip").is_none());
    }

    #[test]
    fn a_request_may_carry_fields_it_does_not_know_and_a_result_may_not() {
        let request =
            r#"{"clipId":"c1","cameraId":"cam-1","startTimestampInMs":1,"endTimestampInMs":2,"priority":"high"}"#;
        let request: ClipRequest = serde_json::from_str(request).unwrap();
        assert!(request.retry_timestamps.is_empty());
        assert_eq!(request.deadline_requeues, 0);
        let result = r#"{"clipId":null,"cameraId":null,"startTimestampInMs":null,"endTimestampInMs":null,"status":"CLIP_INVALID","extra":1}"#;
        let err = serde_json::from_str::<ClipResult>(result).unwrap_err();
        assert!(err.to_string().contains("unknown field `extra`"), "{err}");
    }
}
