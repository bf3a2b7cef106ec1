//! The GIF task's messages: the job `gif-api` puts on the GIF jobs queue for `gif-converter`,
//! and the answers of the GIF task API (`convert`, `get_task_status`, errors). Unlike the
//! pipeline's results these are snake_case JSON, as the API has always answered.
//!
//! The bounds on the parameters and the `tasks` table's attribute names are in
//! [`crate::gif`].

use serde::{Deserialize, Serialize};

use super::Reason;
use crate::wire::wire_enum;

pub const GIF_JOB_VERSION: u32 = 1;

/// One message on the GIF jobs queue. The task row is the source of truth for state; the
/// message carries the validated parameters so the converter needs no extra read to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GifJob {
    pub version: u32,
    pub task_id: String,
    pub src_url: String,
    #[serde(flatten)]
    pub params: GifParams,
}

/// What part of the source becomes the GIF, and how large.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GifParams {
    pub start_secs: f64,
    pub duration_secs: f64,
    pub width: u32,
    pub fps: u32,
}

wire_enum! {
    /// A task's life: QUEUED → RUNNING → DONE | FAILED. DONE and FAILED are final. Spelled the
    /// same in the `tasks` table and in the API's answers.
    pub enum TaskStatus {
        /// Written by `convert`; its job is on the queue.
        Queued = "QUEUED",
        /// A converter run has claimed the task.
        Running = "RUNNING",
        /// The GIF is stored.
        Done = "DONE",
        /// The task ended without a GIF (the answer names the code).
        Failed = "FAILED",
    }
}

impl TaskStatus {
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Failed)
    }
}

/// `convert`'s answer (202): the task queued, with the parameters as resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAccepted {
    pub task_id: String,
    /// Always QUEUED.
    pub status: TaskStatus,
    pub start: f64,
    pub duration: f64,
    pub width: u32,
    pub fps: u32,
    /// Epoch seconds after which the task is gone.
    pub expires_at: i64,
    /// Why the parameters differ from the request (the duration was capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `get_task_status`'s answer (200). What it carries besides the status depends on it: see
/// [`TaskDetail`]; the constructors keep the two in step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatusAnswer {
    pub task_id: String,
    /// True exactly when the GIF can be fetched (`status` DONE).
    pub ready: bool,
    pub status: TaskStatus,
    #[serde(flatten)]
    pub detail: TaskDetail,
}

/// The part of a [`TaskStatusAnswer`] that depends on the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskDetail {
    /// DONE: where to fetch the GIF.
    Gif(GifLink),
    /// FAILED: why.
    Error { error: Reason },
    /// QUEUED or RUNNING: how far along (0–99; 0 while queued).
    Progress { progress: u32 },
}

/// A finished task's GIF: a presigned link and the figures the converter recorded (`null`
/// for a figure the task row lacks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GifLink {
    pub gif_url: String,
    /// Seconds the link works for.
    pub link_expires_in: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frames: Option<u64>,
    pub bytes: Option<u64>,
}

impl TaskStatusAnswer {
    /// A task not finished yet (`status` QUEUED or RUNNING).
    pub fn in_progress(task_id: impl Into<String>, status: TaskStatus, progress: u32) -> Self {
        debug_assert!(!status.is_final(), "{status} is final");
        TaskStatusAnswer {
            task_id: task_id.into(),
            ready: false,
            status,
            detail: TaskDetail::Progress { progress },
        }
    }

    pub fn done(task_id: impl Into<String>, gif: GifLink) -> Self {
        TaskStatusAnswer {
            task_id: task_id.into(),
            ready: true,
            status: TaskStatus::Done,
            detail: TaskDetail::Gif(gif),
        }
    }

    pub fn failed(task_id: impl Into<String>, error: Reason) -> Self {
        TaskStatusAnswer {
            task_id: task_id.into(),
            ready: false,
            status: TaskStatus::Failed,
            detail: TaskDetail::Error { error },
        }
    }

    /// How far along a task not finished yet is; `None` for a final one.
    pub fn progress(&self) -> Option<u32> {
        match self.detail {
            TaskDetail::Progress { progress } => Some(progress),
            _ => None,
        }
    }

    /// A DONE task's GIF.
    pub fn gif(&self) -> Option<&GifLink> {
        match &self.detail {
            TaskDetail::Gif(gif) => Some(gif),
            _ => None,
        }
    }

    /// Why a FAILED task failed.
    pub fn error(&self) -> Option<&Reason> {
        match &self.detail {
            TaskDetail::Error { error } => Some(error),
            _ => None,
        }
    }
}

/// Every answer but success (4xx, 5xx): `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorAnswer {
    pub error: Reason,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{assert_wire_enum, Case};

    #[test]
    fn task_statuses_round_trip_through_their_spelling() {
        assert_wire_enum(TaskStatus::ALL, TaskStatus::as_str, Case::ScreamingSnake);
        assert!(TaskStatus::Done.is_final() && TaskStatus::Failed.is_final());
        assert!(!TaskStatus::Queued.is_final() && !TaskStatus::Running.is_final());
    }

    #[test]
    fn the_job_message_is_flat_json() {
        let job = GifJob {
            version: GIF_JOB_VERSION,
            task_id: "t".into(),
            src_url: "https://example.com/a.mp4".into(),
            params: GifParams {
                start_secs: 1.5,
                duration_secs: 2.0,
                width: 320,
                fps: 10,
            },
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["width"], 320);
        assert_eq!(json["start_secs"], 1.5);
        assert_eq!(serde_json::from_value::<GifJob>(json).unwrap(), job);
    }

    #[test]
    fn a_status_answer_reads_back_as_the_detail_it_was_written_with() {
        let reason = Reason {
            code: crate::Code::GifFailed,
            message: "no frames".into(),
        };
        let link = GifLink {
            gif_url: "https://example.com/x.gif".into(),
            link_expires_in: 3600,
            width: Some(320),
            height: None,
            frames: Some(20),
            bytes: Some(1234),
        };
        for answer in [
            TaskStatusAnswer::in_progress("t", TaskStatus::Running, 40),
            TaskStatusAnswer::done("t", link),
            TaskStatusAnswer::failed("t", reason),
        ] {
            let json = serde_json::to_value(&answer).unwrap();
            assert_eq!(json["ready"], answer.status == TaskStatus::Done, "{json}");
            assert_eq!(answer.gif().is_some(), answer.status == TaskStatus::Done);
            assert_eq!(answer.error().is_some(), answer.status == TaskStatus::Failed);
            assert_eq!(answer.progress().is_some(), !answer.status.is_final());
            assert_eq!(serde_json::from_value::<TaskStatusAnswer>(json).unwrap(), answer);
        }
    }
}
