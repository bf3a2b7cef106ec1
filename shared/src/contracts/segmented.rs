//! What a segmented rendition's state machine (`SegmentedRenditionStateMachine` in
//! `infra/template.yaml`) passes between its tasks, all run by the `segmented-rendition` function:
//!
//! 1. `plan`: probe the source, cut its output into [`Part`]s ([`PlannedRendition`]);
//! 2. `encode`, once per part, in a `Map` state: encode it to a scratch object ([`PartDone`]);
//! 3. `join`: append the video parts and the audio parts, mux them, write the output, publish
//!    `available`;
//! 4. `answerFailure`, from every state's `Catch`: publish what ended the execution.
//!
//! The rendition worker starts the execution with an [`ExecutionInput`]. An execution that ends
//! without passing through `answerFailure` (aborted, timed out, or failed in `answerFailure`
//! itself) is answered by the same function from EventBridge's [`ExecutionStatusChange`] event:
//! the function is invoked with either, a [`SegmentedInvocation`].

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contracts::ObjectRef;
use crate::profiles::RenditionPlan;
use crate::segments::{AudioSegment, Segment, SegmentPlan};

/// One source version rendered under one profile, in segments: the execution's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentedJob {
    pub version: u32,
    pub source: ObjectRef,
    /// The upload notice's source version (sequencer, version id, ETag…): with the profile it
    /// names the outcome, so a single pass and a segmented run of the same source version
    /// answer once between them.
    pub source_version: String,
    pub profile: String,
    pub output_bucket: String,
    /// The same key a single pass writes: `renditions/<source key>/<profile>.mp4`.
    pub output_key: String,
    /// Where the parts are written (under the output bucket's `scratch/`, which a lifecycle
    /// rule empties), one folder per execution.
    pub scratch_prefix: String,
}

/// What the rendition worker starts an execution with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionInput {
    pub job: SegmentedJob,
}

/// What the `segmented-rendition` function is invoked with: a task of its state machine
/// (synchronously, by Step Functions), or the news that one of its executions ended
/// (asynchronously, by the EventBridge rule in the template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SegmentedInvocation {
    Task(SegmentTask),
    ExecutionEnded(EventBridgeEvent<ExecutionStatusChange>),
}

/// The error of the state machine's `RenditionFailed` state (`infra/template.yaml`), which an
/// execution reaches after `answerFailure` has published its outcome.
pub const ANSWERED_FAILURE: &str = "SegmentedRenditionFailed";

/// The `detail-type` of the event Step Functions sends to EventBridge (source `aws.states`) on
/// every status change of a standard workflow's execution.
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The `detail` of an [`EXECUTION_STATUS_CHANGE`] event, as Step Functions documents it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED` (or `PENDING_REDRIVE`).
    pub status: String,
    /// Epoch milliseconds.
    pub start_date: Option<i64>,
    pub stop_date: Option<i64>,
    /// The execution's input as JSON text (an [`ExecutionInput`]); `None` when it is larger than
    /// the event carries (248 KiB), which a job never is.
    pub input: Option<String>,
    pub output: Option<String>,
    /// A failed execution's error and cause (its Fail state's, or the one that ended it).
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The other documented fields (`inputDetails`, the redrive status, …), kept as they came.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The task the state machine asks the `segmented-rendition` function for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum SegmentTask {
    Plan {
        job: SegmentedJob,
    },
    Encode {
        job: SegmentedJob,
        rendition: PlannedRendition,
        part: Part,
    },
    Join {
        job: SegmentedJob,
        rendition: PlannedRendition,
        parts_done: Vec<PartDone>,
    },
    AnswerFailure {
        job: SegmentedJob,
        error: StatesError,
        /// The execution that failed (`$$.Execution.Id`): where a failed Map Run's part is
        /// looked up, when the error is [`MAP_RUN_FAILED`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution_arn: Option<String>,
    },
}

/// The error a Distributed Map's `Catch` sees when one of its child executions (a part) failed:
/// the part's own error is read from the Map Run.
pub const MAP_RUN_FAILED: &str = "States.ExceedToleratedFailureThreshold";

/// What the `plan` task decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRendition {
    /// Size, frame-rate cap and sound, as for a single pass.
    pub picture: RenditionPlan,
    pub source_duration_secs: f64,
    pub segments: SegmentPlan,
    /// Every part to encode: the video segments, then the audio segments when the source has
    /// sound.
    pub parts: Vec<Part>,
    /// What the result's `output.note` will say (upscale avoided, fps capped, no audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The `plan` invocation's own time, for the result's compute.
    pub billed_ms: u64,
}

/// One part of a segmented rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Part {
    /// Video frames `segment.firstFrame` onwards, as MPEG-TS.
    Video { segment: Segment },
    /// Audio frames `segment.firstFrame` onwards, as ADTS (the whole sound when the source's
    /// audio cannot be cut to the sample).
    Audio { segment: AudioSegment },
}

impl Part {
    /// The part's object name under the job's scratch prefix; video parts sort in join order.
    pub fn file_name(&self) -> String {
        match self {
            Part::Video { segment } => format!("video-{:05}.ts", segment.index),
            Part::Audio { segment } => format!("audio-{:05}.aac", segment.index),
        }
    }
}

/// An encoded part, as the `encode` task reports it (the `Map` state's results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartDone {
    pub part: Part,
    pub key: String,
    pub bytes: u64,
    pub billed_ms: u64,
    /// The local disk the task used: its output, and a segment's dropped lead-in (the source
    /// is read by ranges, never stored). What bounds a segment's ephemeral storage.
    pub scratch_bytes: u64,
}

/// What a `Catch` puts under `error`: the error name and its cause, as Step Functions reports
/// them (`Cause` is the function's error as JSON for Lambda errors, a sentence otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatesError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}
