//! What the results topic carries, typed: the pipeline's results ([`PipelineResult`]: uploads,
//! renditions, MediaConvert jobs) and the clip trimmer's ([`ClipResult`]), told apart by shape
//! (a clip result has no `version` and refuses unknown fields).

use serde::Deserialize;
use serde_json::Value;
use shared::contracts::clip::{ClipResult, ClipStatus};
use shared::contracts::{PipelineResult, ResultStatus};

use crate::BoxError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TopicResult {
    Clip(ClipResult),
    Pipeline(PipelineResult),
}

impl TopicResult {
    /// `message` as a result: an error naming it when it is neither contract.
    pub fn parse(message: &Value) -> Result<TopicResult, BoxError> {
        serde_json::from_value(message.clone())
            .map_err(|_| format!("neither a pipeline nor a clip result: {message:#}").into())
    }

    /// The job ended with its output made (`available`, `CLIP_AVAILABLE`).
    pub fn is_available(&self) -> bool {
        match self {
            TopicResult::Clip(clip) => clip.status == ClipStatus::Available,
            TopicResult::Pipeline(result) => result.status == ResultStatus::Available,
        }
    }

    /// The last answer to its request: everything but a pending clip (which is re-queued and
    /// answered again) and the progress of a segmented rendition.
    pub fn is_final(&self) -> bool {
        !matches!(self, TopicResult::Clip(clip) if clip.status == ClipStatus::Pending)
            && !matches!(self, TopicResult::Pipeline(r) if r.status == ResultStatus::InProgress)
    }

    /// The outcome it reports, for counting answers per outcome: a pipeline result by job,
    /// profile, source key, status and code; a clip result by clip and status.
    pub fn outcome(&self) -> String {
        match self {
            TopicResult::Clip(clip) => format!("clip {} {}", clip.clip_id.as_deref().unwrap_or("-"), clip.status),
            TopicResult::Pipeline(r) => format!(
                "{} {} {} {} {}",
                r.job,
                r.profile.as_deref().unwrap_or("-"),
                r.source.key,
                r.status,
                r.reason.as_ref().map_or("-", |reason| reason.code.as_str())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::contracts::fixture;

    /// Every result fixture is told apart as what it is.
    #[test]
    fn pipeline_and_clip_results_are_told_apart() {
        let pipeline = TopicResult::parse(&fixture("result-rendition-available.json")).unwrap();
        assert!(matches!(pipeline, TopicResult::Pipeline(_)), "{pipeline:?}");
        assert!(pipeline.is_available() && pipeline.is_final());
        let clip = TopicResult::parse(&fixture("clip-result-pending.json")).unwrap();
        assert!(matches!(clip, TopicResult::Clip(_)), "{clip:?}");
        assert!(!clip.is_available() && !clip.is_final());
        assert!(TopicResult::parse(&serde_json::json!({"status": "available"})).is_err());
    }
}
