//! The clip trimmer's messages: the request it reads from its queue (and re-queues) and the
//! result it publishes on the results topic. Both keep the original service's field names
//! (camelCase ids and `…TimestampInMs`), which is why they are not versioned like the
//! pipeline's own contracts: the deployed producers and readers know them as they are.
//!
//! Fixtures: `clip-request*.json` and `clip-result-*.json` under `shared/fixtures/`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::publish::Attribute;

/// The `job` message attribute of every clip result, beside `status` (and `reason` when there is
/// a code), so a subscription can filter clip results from the pipeline's.
pub const JOB: &str = "clip";

/// An enum whose every variant is one fixed string on the wire. The string is written once, in
/// the variant list; `as_str`, `ALL`, `FromStr`, `Display` and serde all read it from there, so
/// the code and the JSON cannot spell a name two ways.
macro_rules! wire_names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as it travels in JSON and message attributes.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| UnknownName {
                    kind: stringify!($name),
                    text: text.to_owned(),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name that is none of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub kind: &'static str,
    pub text: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a {}", self.text, self.kind)
    }
}

impl std::error::Error for UnknownName {}

wire_names! {
    /// What a clip request came to: every delivery of a request is answered with one of these.
    pub enum ClipStatus {
        /// The clip and its thumbnails are stored (`bucket`, `clip` and `thumbnail` say where).
        Available = "CLIP_AVAILABLE",
        /// The recordings do not cover the range yet and the request is younger than
        /// `SQS_RETRY_LIMIT`: it is re-queued with a delay of `SQS_TIMEOUT`
        /// (`nextAttemptInSeconds`), with this attempt added to `retryTimestamps`.
        Pending = "CLIP_PENDING",
        /// The recordings still do not cover the range after `SQS_RETRY_LIMIT`.
        NotAvailable = "CLIP_NOT_AVAILABLE",
        /// The range starts more than `OUT_OF_RANGE_LIMIT` ago (recordings are not kept longer).
        OutOfRange = "CLIP_OUT_OF_RANGE",
        /// The request is malformed or impossible, or names an unknown camera.
        Invalid = "CLIP_INVALID",
        /// A recording is missing, corrupt or unusable, or ffmpeg failed.
        Failed = "CLIP_FAILED",
    }
}

wire_names! {
    /// The trimmer's own codes beside the status names, in a result's `code` (and in logs and
    /// dead-letter reasons). A result's code is a [`ClipStatus`] name for the trimmer's own
    /// verdicts (`CLIP_PENDING`, `CLIP_INVALID`, …), one of these, or a code of the shared
    /// modules (e.g. `CORRUPT_INPUT`).
    pub enum ClipCode {
        /// With `CLIP_FAILED`: the clip could not be finished within `MAX_DEADLINE_REQUEUES`
        /// invocations.
        TooSlow = "CLIP_TOO_SLOW",
        /// With `CLIP_FAILED`: a listed recording is not in the origin bucket.
        RecordingMissing = "RECORDING_MISSING",
        /// With `CLIP_FAILED`: a recording is empty or not a video ffprobe can index.
        RecordingCorrupt = "RECORDING_CORRUPT",
        /// With `CLIP_FAILED`: the camera API listed a recording outside `RECORDINGS_URL`, or
        /// one whose start cannot be told.
        RecordingUnusable = "RECORDING_UNUSABLE",
        /// With `CLIP_INVALID`: the camera API does not know the camera.
        CameraNotFound = "CAMERA_NOT_FOUND",
        /// With `CLIP_FAILED`: the camera API gave an answer it should never give.
        CameraApiRejected = "CAMERA_API_REJECTED",
        /// Retried, never published: the camera API is unreachable, slow, or answers 5xx or 429.
        CameraApiUnavailable = "CAMERA_API_UNAVAILABLE",
    }
}

wire_names! {
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
    /// A stable code for every status but `CLIP_AVAILABLE` (see [`ClipCode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
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

    pub fn with_reason(mut self, code: &str, reason: impl Into<String>) -> Self {
        self.code = Some(code.to_owned());
        self.reason = Some(reason.into());
        self
    }

    /// The code, or `""` for a result without one.
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }

    /// SNS message attributes, so subscribers can filter (`job`, `status`, `reason`).
    pub fn attributes(&self) -> Vec<(&'static str, Attribute)> {
        let mut attributes = vec![
            ("job", Attribute::Text(JOB.to_owned())),
            ("status", Attribute::Text(self.status.as_str().to_owned())),
        ];
        if let Some(code) = &self.code {
            attributes.push(("reason", Attribute::Text(code.clone())));
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
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize + for<'de> Deserialize<'de>,
            T::Err: fmt::Debug,
        {
            for &name in all {
                let json = serde_json::to_value(name).unwrap();
                assert_eq!(json, serde_json::Value::from(name.to_string()));
                assert_eq!(serde_json::from_value::<T>(json).unwrap(), name);
                assert_eq!(name.to_string().parse::<T>().unwrap(), name);
            }
        }
        check(ClipStatus::ALL);
        check(ClipCode::ALL);
        check(ClipMode::ALL);
        let err = serde_json::from_str::<ClipStatus>(r#""CLIP_MAYBE""#).unwrap_err();
        assert!(err.to_string().contains(r#""CLIP_MAYBE" is not a ClipStatus"#), "{err}");
    }

    #[test]
    fn no_name_is_spelled_twice() {
        let mut names: Vec<&str> = ClipStatus::ALL.iter().map(|s| s.as_str()).collect();
        names.extend(ClipCode::ALL.iter().map(|c| c.as_str()));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a code repeats a status or another code");
    }

    #[test]
    fn results_carry_filterable_attributes() {
        let request: ClipRequest = serde_json::from_str(
            r#"{"clipId":"c1","cameraId":"cam-1","startTimestampInMs":1000,"endTimestampInMs":5000}"#,
        )
        .unwrap();
        let result =
            ClipResult::for_request(&request, ClipStatus::Pending).with_reason(ClipStatus::Pending.as_str(), "later");
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
