//! The messages the functions exchange. Versioned (`version`), camelCase JSON, each with a
//! fixture under `shared/fixtures/` that the tests check against its type both ways (see
//! [`round_trip`]), so a change to a contract shows up as a fixture diff in review.
//!
//! * this module: the pipeline's messages: [`UploadNotice`] on the uploads topic, and
//!   [`PipelineResult`] on the results topic for uploads, renditions and MediaConvert jobs;
//! * [`clip`]: the clip trimmer's request and result (the original service's shapes, unversioned);
//! * [`gif`]: the GIF job on its queue and the GIF task API's answers.
//! * [`segmented`]: what the state machine of a segmented rendition passes between its tasks.
//!
//! Codes and statuses are enums ([`crate::Code`], [`ResultStatus`], …), each spelled once.

pub mod clip;
pub mod gif;
pub mod segmented;

use serde::{Deserialize, Serialize};

use crate::error::truncate_chars;
use crate::publish::Attribute;
use crate::s3_event::MAX_KEY_BYTES;
use crate::wire::wire_enum;
use crate::{Code, ProcessingError};

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

wire_enum! {
    /// Which stage of the pipeline a result comes from.
    pub enum Job {
        /// The upload publisher (a rejected upload; accepted ones become [`UploadNotice`]s).
        Upload = "upload",
        /// A rendition worker.
        Rendition = "rendition",
        /// A MediaConvert job (submitted by `mediaconvert-submitter`, answered by
        /// `mediaconvert-results` when MediaConvert reports its end state).
        Mediaconvert = "mediaconvert",
    }
}

wire_enum! {
    /// How a job ended.
    pub enum ResultStatus {
        /// The output exists and can be served.
        Available = "available",
        /// The input can never be processed (named reason); nothing will be retried.
        Rejected = "rejected",
        /// Processing failed for a reason retrying will not change.
        Failed = "failed",
        /// Someone canceled the job before it finished (MediaConvert `CANCELED`).
        Canceled = "canceled",
        /// Not an outcome: a segmented rendition is under way (`progress` says how far). Its
        /// outcome follows as one of the statuses above.
        InProgress = "in_progress",
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

/// Why a job was rejected or failed: a stable code and a sentence. (The GIF task API's errors
/// have the same shape.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: Code,
    pub message: String,
}

impl From<&ProcessingError> for Reason {
    fn from(err: &ProcessingError) -> Self {
        Reason {
            code: err.code(),
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
    /// Rendition results: the Lambda compute this outcome took, and its price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<Compute>,
    /// `in_progress` results: how far a segmented rendition is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// How far a segmented rendition is: its parts (the video segments and, when the source has
/// sound, the audio) encoded so far, out of all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub parts_done: u32,
    pub parts_total: u32,
    /// `partsDone / partsTotal` in whole percent, rounded down (100 only when all are done).
    pub percent: u32,
}

impl Progress {
    pub fn new(parts_done: u32, parts_total: u32) -> Self {
        let parts_done = parts_done.min(parts_total);
        let percent = (u64::from(parts_done) * 100)
            .checked_div(u64::from(parts_total))
            .unwrap_or(100) as u32;
        Progress {
            parts_done,
            parts_total,
            percent,
        }
    }
}

/// What one outcome cost in Lambda compute: the time its message held the invocation, at the
/// function's memory, priced at the deployment's rate per GB-second. Lambda bills an invocation
/// by the millisecond; the messages of one batch share it, each counted for its own time, so the
/// results of a batch add up to (nearly all of) what the invocation was billed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compute {
    pub billed_ms: u64,
    pub memory_mb: u32,
    pub gb_seconds: f64,
    /// USD per GB-second, as deployed (the template's `LambdaPricePerGbSecond`, by default the
    /// list price for its `Architecture`).
    pub price_per_gb_second: f64,
    /// `gbSeconds × pricePerGbSecond`, in USD (requests and storage not included).
    pub estimated_cost_usd: f64,
    /// Segmented renditions: how many invocations the compute adds up (plan, every part, join).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations: Option<u32>,
}

impl Compute {
    /// `elapsed` rounded up to Lambda's billing unit (1 ms); Lambda counts a GB as 1,024 MB.
    pub fn new(elapsed: std::time::Duration, memory_mb: u32, price_per_gb_second: f64) -> Self {
        let billed_ms = elapsed.as_nanos().div_ceil(1_000_000).max(1) as u64;
        let gb_seconds = f64::from(memory_mb) / 1024.0 * billed_ms as f64 / 1000.0;
        Compute {
            billed_ms,
            memory_mb,
            gb_seconds,
            price_per_gb_second,
            estimated_cost_usd: gb_seconds * price_per_gb_second,
            invocations: None,
        }
    }

    /// The compute of several invocations (a segmented rendition's plan, parts and join), each
    /// billed by its own milliseconds at `memory_mb`.
    pub fn of_invocations(billed_ms: impl IntoIterator<Item = u64>, memory_mb: u32, price_per_gb_second: f64) -> Self {
        let (count, total_ms) = billed_ms
            .into_iter()
            .fold((0u32, 0u64), |(n, total), ms| (n + 1, total + ms.max(1)));
        let mut compute = Compute::new(
            std::time::Duration::from_millis(total_ms),
            memory_mb,
            price_per_gb_second,
        );
        compute.invocations = Some(count);
        compute
    }
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
    /// The job's warnings as MediaConvert reports them on COMPLETE (a code and how often it
    /// occurred; `GetJob`'s `messages.warning` says each in words). The local MediaConvert
    /// reports the settings it accepted without local effect as code 990001.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<JobWarning>,
}

/// One of a MediaConvert job's warning groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobWarning {
    pub code: i64,
    pub count: u64,
}

/// One file a job wrote, and where viewers fetch it (the CloudFront distribution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredFile {
    pub bucket: String,
    pub key: String,
    pub url: String,
    pub kind: FileKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

wire_enum! {
    /// What a [`DeliveredFile`] is.
    pub enum FileKind {
        /// A file group output (an MP4, …).
        Media = "media",
        /// A rendition of a streaming group: an HLS variant playlist, a DASH/CMAF representation.
        Variant = "variant",
        /// A streaming group's manifest: the HLS multivariant (master) playlist, a DASH MPD.
        Master = "master",
    }
}

impl PipelineResult {
    /// The reason's code as spelled (`NOT_VIDEO`, …), or `""` for a result without one: for
    /// logs and outcome keys.
    pub fn reason_code(&self) -> &'static str {
        self.reason.as_ref().map_or("", |r| r.code.as_str())
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
            compute: None,
            progress: None,
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
            attributes.push(("reason", Attribute::Text(reason.code.as_str().to_owned())));
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

/// The fixture `shared/fixtures/<name>` as JSON. For tests: the path is this crate's source
/// tree, so the functions' tests can check what they produce against the same fixtures.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Checks that `json` is exactly a `T`, both ways: it parses into `T`, and `T` writes it back
/// as the same JSON value. A field the type does not know (dropped on parsing), a field the
/// type writes that `json` lacks, and a value written differently all fail, each named by its
/// JSON path. The one check behind every fixture test and every test of a function's output.
pub fn round_trip<T>(json: &serde_json::Value) -> Result<T, String>
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let parsed: T = serde_json::from_value(json.clone()).map_err(|e| format!("does not parse: {e}"))?;
    let written = serde_json::to_value(&parsed).map_err(|e| format!("does not serialise: {e}"))?;
    let mut differences = Vec::new();
    json_differences("", json, &written, &mut differences);
    if !differences.is_empty() {
        return Err(differences.join("; "));
    }
    let reparsed: T = serde_json::from_value(written).map_err(|e| format!("its own output does not parse: {e}"))?;
    if reparsed != parsed {
        return Err(format!("reads back as {reparsed:?}, not {parsed:?}"));
    }
    Ok(parsed)
}

/// Where `original` and `written` differ, by JSON path (`/mediaconvert/outputs/0/kind`).
fn json_differences(path: &str, original: &serde_json::Value, written: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (original, written) {
        (Value::Object(a), Value::Object(b)) => {
            for (name, value) in a {
                match b.get(name) {
                    Some(other) => json_differences(&format!("{path}/{name}"), value, other, out),
                    None => out.push(format!("{path}/{name} is not a field of the type (dropped)")),
                }
            }
            for name in b.keys().filter(|name| !a.contains_key(*name)) {
                out.push(format!("{path}/{name} is written by the type but missing"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (value, other)) in a.iter().zip(b).enumerate() {
                json_differences(&format!("{path}/{i}"), value, other, out);
            }
        }
        _ if original == written => {}
        _ => out.push(format!("{path} is {original}, written back as {written}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixture under `shared/fixtures/` and the contract it holds.
    const FIXTURES: &[(&str, Check)] = &[
        ("upload-notice.json", holds::<UploadNotice>),
        ("result-upload-rejected.json", holds::<PipelineResult>),
        ("result-rendition-available.json", holds::<PipelineResult>),
        ("result-rendition-rejected.json", holds::<PipelineResult>),
        ("result-rendition-in-progress.json", holds::<PipelineResult>),
        ("result-rendition-available-segmented.json", holds::<PipelineResult>),
        ("result-rendition-failed-segmented.json", holds::<PipelineResult>),
        ("segmented-rendition-job.json", holds::<segmented::SegmentedJob>),
        ("segmented-rendition-plan.json", holds::<segmented::PlannedRendition>),
        ("segmented-rendition-part-done.json", holds::<segmented::PartDone>),
        (
            "segmented-rendition-execution-aborted.json",
            holds::<segmented::SegmentedInvocation>,
        ),
        ("result-mediaconvert-available.json", holds::<PipelineResult>),
        ("result-mediaconvert-failed.json", holds::<PipelineResult>),
        ("result-mediaconvert-canceled.json", holds::<PipelineResult>),
        ("result-mediaconvert-rejected.json", holds::<PipelineResult>),
        ("result-mediaconvert-refused.json", holds::<PipelineResult>),
        ("gif-job.json", holds::<gif::GifJob>),
        ("gif-task-accepted.json", holds::<gif::TaskAccepted>),
        ("gif-task-status-queued.json", holds::<gif::TaskStatusAnswer>),
        ("gif-task-status-running.json", holds::<gif::TaskStatusAnswer>),
        ("gif-task-status-done.json", holds::<gif::TaskStatusAnswer>),
        ("gif-task-status-failed.json", holds::<gif::TaskStatusAnswer>),
        ("gif-api-error.json", holds::<gif::ApiErrorAnswer>),
        ("codes.json", holds::<Vec<Code>>),
        ("clip-request.json", holds::<clip::ClipRequest>),
        ("clip-request-requeued.json", holds::<clip::ClipRequest>),
        ("clip-request-handed-on.json", holds::<clip::ClipRequest>),
        ("clip-result-available.json", holds::<clip::ClipResult>),
        ("clip-result-available-re-encoded.json", holds::<clip::ClipResult>),
        ("clip-result-pending.json", holds::<clip::ClipResult>),
        ("clip-result-not-available.json", holds::<clip::ClipResult>),
        ("clip-result-out-of-range.json", holds::<clip::ClipResult>),
        ("clip-result-invalid.json", holds::<clip::ClipResult>),
        ("clip-result-invalid-not-a-request.json", holds::<clip::ClipResult>),
        ("clip-result-failed.json", holds::<clip::ClipResult>),
        // Not ours but the camera API's: checked by the local stand-in that writes it and by the
        // clip trimmer's client that reads it; here only as valid JSON.
        ("camera-api-recordings.json", holds::<Vec<serde_json::Value>>),
    ];

    type Check = fn(&serde_json::Value) -> Result<(), String>;

    fn holds<T>(json: &serde_json::Value) -> Result<(), String>
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        round_trip::<T>(json).map(drop)
    }

    #[test]
    fn every_fixture_holds_its_contract_both_ways() {
        let failures: Vec<String> = FIXTURES
            .iter()
            .filter_map(|(name, check)| check(&fixture(name)).err().map(|e| format!("{name}: {e}")))
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn every_fixture_file_is_checked() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut listed: Vec<String> = FIXTURES.iter().map(|(name, _)| name.to_string()).collect();
        listed.sort();
        assert_eq!(
            files, listed,
            "a fixture without a contract, or a contract without its fixture"
        );
    }

    #[test]
    fn the_check_names_unknown_missing_and_different_fields() {
        let notice = fixture("upload-notice.json");
        assert!(round_trip::<UploadNotice>(&notice).is_ok());

        let mut unknown = notice.clone();
        unknown["sizeInBytes"] = 1.into();
        let err = round_trip::<UploadNotice>(&unknown).unwrap_err();
        assert!(err.contains("/sizeInBytes is not a field"), "{err}");

        let mut missing = notice.clone();
        missing.as_object_mut().unwrap().remove("key");
        assert!(round_trip::<UploadNotice>(&missing)
            .unwrap_err()
            .contains("does not parse"));

        // Written differently: a float where the fixture has an integer.
        let mut rendition = fixture("result-rendition-available.json");
        rendition["output"]["durationSecs"] = 4.into();
        let err = round_trip::<PipelineResult>(&rendition).unwrap_err();
        assert!(err.contains("/output/durationSecs is 4, written back as 4.0"), "{err}");

        let mut result = fixture("result-mediaconvert-available.json");
        result["mediaconvert"]["outputs"][0]["kind"] = "thumbnail".into();
        assert!(round_trip::<PipelineResult>(&result).unwrap_err().contains("thumbnail"));
    }

    #[test]
    fn compute_is_billed_by_the_millisecond_at_the_memory_in_gb() {
        let compute = Compute::new(std::time::Duration::from_micros(61_000_400), 3008, 0.0000133334);
        assert_eq!((compute.billed_ms, compute.memory_mb), (61_001, 3008));
        assert!(
            (compute.gb_seconds - 3008.0 / 1024.0 * 61.001).abs() < 1e-9,
            "{compute:?}"
        );
        assert!((compute.estimated_cost_usd - compute.gb_seconds * 0.0000133334).abs() < 1e-15);
        assert_eq!(
            Compute::new(std::time::Duration::ZERO, 128, 1.0).billed_ms,
            1,
            "at least 1 ms"
        );
    }

    #[test]
    fn statuses_and_kinds_round_trip_through_their_spelling() {
        use crate::wire::{assert_wire_enum, Case};
        assert_wire_enum(Job::ALL, Job::as_str, Case::Snake);
        assert_wire_enum(ResultStatus::ALL, ResultStatus::as_str, Case::Snake);
        assert_wire_enum(FileKind::ALL, FileKind::as_str, Case::Snake);
    }

    #[test]
    fn attributes_for_filter_policies() {
        let err = ProcessingError::rejected(Code::NotVideo, "a text file");
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
                ("job", Attribute::Text(Job::Upload.as_str().into())),
                ("status", Attribute::Text(ResultStatus::Rejected.as_str().into())),
                ("reason", Attribute::Text(Code::NotVideo.as_str().into()))
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
