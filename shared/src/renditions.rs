//! What a rendition carries whichever way it was made (one ffmpeg pass in the rendition worker,
//! or segments joined by the `segmented-rendition` function): the note on how the source was
//! fitted, the output object's metadata, and the outcome key its result is published under.

use std::path::Path;

use crate::contracts::{Job, PipelineResult};
use crate::ffmpeg::Deadline;
use crate::ledger::{Ledger, OutcomeKey, Publication};
use crate::probe::probe_file;
use crate::probe::MediaInfo;
use crate::profiles::{RenditionPlan, RenditionProfile};
use crate::storage::metadata_value;
use crate::{Code, ProcessingError};

/// What the result's `output.note` says about how the source was fitted, if anything.
pub fn plan_note(plan: &RenditionPlan, info: &MediaInfo, profile: &RenditionProfile) -> Option<String> {
    let mut notes = Vec::new();
    if plan.upscale_avoided {
        let (w, h) = info.video.as_ref().map(|v| v.display_size()).unwrap_or_default();
        notes.push(format!(
            "source is {w}x{h}, smaller than {}: kept at its own size, not upscaled",
            profile.name
        ));
    }
    if let Some(fps) = plan.fps_cap {
        notes.push(format!("frame rate capped at {fps} fps"));
    }
    if !plan.has_audio {
        notes.push("source has no audio".to_owned());
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// What ffmpeg made, as ffprobe reads it back: displayed width and height, and duration. An
/// output that is not a readable video is a failed transcode.
pub async fn probe_output(
    ffprobe: &Path,
    output: &Path,
    deadline: Deadline,
) -> Result<(u32, u32, f64), ProcessingError> {
    let unreadable = |reason: String| ProcessingError::failed(Code::TranscodeFailed, reason);
    let rendered = probe_file(ffprobe, output, deadline)
        .await
        .map_err(|e| unreadable(format!("ffmpeg's output is unreadable: {}", e.reason)))?;
    let video = rendered.require_video().map_err(|e| unreadable(e.reason))?;
    let (width, height) = video.display_size();
    Ok((width, height, rendered.duration_secs.unwrap_or(0.0)))
}

/// The rendition as described by its object's metadata: enough to answer a redelivered notice
/// for the same source version without rendering again.
pub struct OutputDescription<'a> {
    pub source_bucket: &'a str,
    pub source_key: &'a str,
    pub source_etag: Option<&'a str>,
    pub profile: &'a str,
    pub width: u32,
    pub height: u32,
    pub duration_secs: f64,
    pub upscale_avoided: bool,
    pub note: Option<&'a str>,
}

impl OutputDescription<'_> {
    /// The `x-amz-meta-*` pairs the output is written with.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let mut metadata = vec![
            ("source-bucket".to_owned(), metadata_value(self.source_bucket)),
            ("source-key".to_owned(), metadata_value(self.source_key)),
            ("profile".to_owned(), self.profile.to_owned()),
            ("width".to_owned(), self.width.to_string()),
            ("height".to_owned(), self.height.to_string()),
            ("duration-secs".to_owned(), format!("{:.3}", self.duration_secs)),
            ("upscale-avoided".to_owned(), self.upscale_avoided.to_string()),
        ];
        if let Some(etag) = self.source_etag {
            metadata.push(("source-etag".to_owned(), metadata_value(etag)));
        }
        if let Some(note) = self.note {
            metadata.push(("note".to_owned(), metadata_value(note)));
        }
        metadata
    }
}

/// Publishes a rendition result once per outcome (see [`outcome_key`]), keyed on the result's
/// own source: the rendition worker and the segmented join answer through this one door, so a
/// source rendered either way has one outcome per status and reason.
pub async fn publish_rendition_result(
    ledger: &Ledger,
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    profile: &str,
    source_version: &str,
    delivery: &str,
    result: &PipelineResult,
) -> Result<Publication, ProcessingError> {
    let outcome = outcome_key(
        profile,
        &result.source.bucket,
        &result.source.key,
        source_version,
        result,
    );
    ledger
        .publish_once(sns, topic_arn, &outcome, delivery, result, &result.attributes())
        .await
}

/// The outcome a rendition result is published under: one per source version, profile,
/// status and reason, whichever function answers and however often.
pub fn outcome_key(
    profile: &str,
    bucket: &str,
    key: &str,
    source_version: &str,
    result: &PipelineResult,
) -> OutcomeKey {
    OutcomeKey::new([
        Job::Rendition.as_str(),
        profile,
        bucket,
        key,
        source_version,
        result.status.as_str(),
        result.reason_code(),
    ])
}
