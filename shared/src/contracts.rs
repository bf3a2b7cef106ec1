//! The messages the functions exchange. Versioned (`version`), camelCase JSON, each with a
//! fixture under `shared/fixtures/` that the tests round-trip, so a change to a contract shows
//! up as a fixture diff in review.
//!
//! * [`clip`]: the clip trimmer's request and result (the original service's shapes, unversioned).

pub mod clip;

use serde::{Deserialize, Serialize};

use crate::error::truncate_chars;
use crate::publish::Attribute;
use crate::s3_event::MAX_KEY_BYTES;
use crate::ProcessingError;

/// The version of the message contracts in this module.
pub const CONTRACT_VERSION: u32 = 1;

/// Published on the uploads topic: one per video object created in the source bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadNotice {
    pub version: u32,
    pub bucket: String,
    /// The object key, decoded (spaces are spaces, not `+`).
    pub key: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    /// When S3 saw the object created (RFC 3339).
    pub event_time: String,
}

/// Which stage of the pipeline a result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    Upload,
    Rendition,
    /// A MediaConvert job (submitted by `mediaconvert-submitter`, answered by
    /// `mediaconvert-results` when MediaConvert reports its end state).
    Mediaconvert,
}

impl Job {
    pub fn as_str(&self) -> &'static str {
        match self {
            Job::Upload => "upload",
            Job::Rendition => "rendition",
            Job::Mediaconvert => "mediaconvert",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// The output exists and can be served.
    Available,
    /// The input can never be processed (named reason); nothing will be retried.
    Rejected,
    /// Processing failed for a reason retrying will not change.
    Failed,
    /// Someone canceled the job before it finished (MediaConvert `CANCELED`).
    Canceled,
}

impl ResultStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ResultStatus::Available => "available",
            ResultStatus::Rejected => "rejected",
            ResultStatus::Failed => "failed",
            ResultStatus::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Why a job was rejected or failed: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

impl From<&ProcessingError> for Reason {
    fn from(err: &ProcessingError) -> Self {
        Reason {
            code: err.code.to_owned(),
            message: err.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenditionOutput {
    pub bucket: String,
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub duration_secs: f64,
    pub bytes: u64,
    /// The source was smaller than the profile; it was kept at its own size.
    pub upscale_avoided: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Published on the results topic for every upload or rendition outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineResult {
    pub version: u32,
    pub job: Job,
    pub status: ResultStatus,
    pub source: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<RenditionOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// MediaConvert jobs only: the job and what it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediaconvert: Option<MediaConvertJob>,
}

/// What a MediaConvert job was and what it delivered (`job: "mediaconvert"` results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaConvertJob {
    pub job_id: String,
    /// MediaConvert's own numeric error code on `ERROR` (e.g. 1040), beside the stable
    /// `reason.code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// Playable files: every media file or variant playlist, and HLS master playlists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<DeliveredFile>,
}

/// One file a job wrote, and where viewers fetch it (the CloudFront distribution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredFile {
    pub bucket: String,
    pub key: String,
    pub url: String,
    /// `media` (a file group output), `variant` (an HLS rendition playlist) or `master`
    /// (an HLS multivariant playlist).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl PipelineResult {
    /// The reason's stable code (`NOT_VIDEO`, …), or `""` for a result without one.
    pub fn reason_code(&self) -> &str {
        self.reason.as_ref().map(|r| r.code.as_str()).unwrap_or("")
    }

    /// A rejected or failed result for `err` (which must not be retryable).
    ///
    /// The source's names are cut to S3's key limit ([`MAX_KEY_BYTES`] characters): a forged or
    /// corrupt event can carry names of any length, and a result naming all of one would exceed
    /// SNS's message size and fail on every retry. Real keys, bucket names and ETags are never cut.
    pub fn from_error(job: Job, source: ObjectRef, profile: Option<String>, err: &ProcessingError) -> Self {
        let cut = |name: &str| truncate_chars(name, MAX_KEY_BYTES);
        let source = ObjectRef {
            bucket: cut(&source.bucket),
            key: cut(&source.key),
            etag: source.etag.as_deref().map(cut),
        };
        let status = match err.kind {
            crate::ErrorKind::Failed => ResultStatus::Failed,
            _ => ResultStatus::Rejected,
        };
        PipelineResult {
            version: CONTRACT_VERSION,
            job,
            status,
            source,
            profile,
            output: None,
            reason: Some(Reason::from(err)),
            mediaconvert: None,
        }
    }

    /// SNS message attributes, so subscribers can filter (`job`, `status`, `profile`).
    pub fn attributes(&self) -> Vec<(&'static str, Attribute)> {
        let mut attributes = vec![
            ("job", Attribute::Text(self.job.as_str().to_owned())),
            ("status", Attribute::Text(self.status.as_str().to_owned())),
        ];
        if let Some(profile) = &self.profile {
            attributes.push(("profile", Attribute::Text(profile.clone())));
        }
        if let Some(reason) = &self.reason {
            attributes.push(("reason", Attribute::Text(reason.code.clone())));
        }
        attributes
    }
}

impl UploadNotice {
    /// Which version of the object this notice is about, as precisely as the event says: S3's
    /// sequencer (unique per change of a key; a duplicated event repeats it), else the version
    /// id, else the ETag, else the event time.
    pub fn source_version(&self) -> &str {
        [&self.sequencer, &self.version_id, &self.etag]
            .into_iter()
            .find_map(|v| v.as_deref().filter(|v| !v.is_empty()))
            .unwrap_or(&self.event_time)
    }

    /// SNS message attributes for the uploads topic's subscription filter policies: the file
    /// extension (lowercase) and the size in bytes.
    pub fn attributes(&self) -> Vec<(&'static str, Attribute)> {
        vec![
            ("extension", Attribute::Text(extension_of(&self.key))),
            ("sizeBytes", Attribute::Number(self.size)),
        ]
    }
}

/// The lowercase extension of a key's last path segment, `""` when it has none.
pub fn extension_of(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// The `UserMetadata` keys every MediaConvert job carries: the submitter writes them,
/// `mediaconvert-results` reads them back from the job-state event.
pub mod mediaconvert_metadata {
    pub const PIPELINE: &str = "pipeline";
    pub const TEMPLATE: &str = "template";
    pub const SOURCE_BUCKET: &str = "sourceBucket";
    pub const SOURCE_KEY: &str = "sourceKey";
    pub const SOURCE_ETAG: &str = "sourceEtag";
    pub const SOURCE_VERSION: &str = "sourceVersionId";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `shared/fixtures/<fixture>` as `T` and writes it back: the JSON must come back
    /// equal, so a field the type lacks (or names differently) fails as surely as a missing one.
    pub(super) fn round_trip<T>(fixture: &str)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let text = std::fs::read_to_string(format!("{}/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let parsed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let written = serde_json::to_value(&parsed).unwrap();
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, original, "{fixture} does not round-trip");
        assert_eq!(serde_json::from_value::<T>(written).unwrap(), parsed);
    }

    #[test]
    fn fixtures_round_trip() {
        round_trip::<UploadNotice>("upload-notice.json");
        round_trip::<PipelineResult>("result-rendition-available.json");
        round_trip::<PipelineResult>("result-rendition-rejected.json");
        round_trip::<PipelineResult>("result-upload-rejected.json");
        round_trip::<PipelineResult>("result-mediaconvert-available.json");
        round_trip::<PipelineResult>("result-mediaconvert-failed.json");
    }

    #[test]
    fn attributes_for_filter_policies() {
        let err = ProcessingError::rejected("NOT_VIDEO", "a text file");
        let result = PipelineResult::from_error(
            Job::Upload,
            ObjectRef {
                bucket: "b".into(),
                key: "notes.txt".into(),
                etag: None,
            },
            None,
            &err,
        );
        assert_eq!(result.status, ResultStatus::Rejected);
        assert_eq!(
            result.attributes(),
            vec![
                ("job", Attribute::Text("upload".into())),
                ("status", Attribute::Text("rejected".into())),
                ("reason", Attribute::Text("NOT_VIDEO".into()))
            ]
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(extension_of("a/b/Clip.MP4"), "mp4");
        assert_eq!(extension_of("a.dir/noext"), "");
        assert_eq!(extension_of(".hidden"), "");
        assert_eq!(extension_of("my demo+clip.tar.gz"), "gz");
    }
}
