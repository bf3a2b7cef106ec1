//! What `gif-api` (writes tasks, enqueues jobs, reads status) and `gif-converter` (consumes
//! jobs, keeps the task current) share besides their messages: the bounds on the optional
//! parameters, the `tasks` table's attribute names, task ids and GIF keys.
//!
//! The messages themselves (the job, the task statuses, the API's answers) are contracts, in
//! [`crate::contracts::gif`]; they are re-exported here for the code that reads them as GIF
//! things.

use serde::Deserialize;

pub use crate::contracts::gif::{GifJob, GifParams, TaskStatus, GIF_JOB_VERSION};
use crate::{Code, ProcessingError};

/// The bounds on [`GifParams`], from configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GifLimits {
    /// Longest segment; a longer request is capped (and the answer says so).
    pub max_duration_secs: f64,
    pub default_duration_secs: f64,
    /// Latest start accepted (a source longer than this is unusual for a GIF).
    pub max_start_secs: f64,
    pub min_width: u32,
    pub max_width: u32,
    pub default_width: u32,
    pub max_fps: u32,
    pub default_fps: u32,
}

impl Default for GifLimits {
    fn default() -> Self {
        GifLimits {
            max_duration_secs: 15.0,
            default_duration_secs: 5.0,
            max_start_secs: 6.0 * 3600.0,
            min_width: 16,
            max_width: 1280,
            default_width: 480,
            max_fps: 30,
            default_fps: 12,
        }
    }
}

impl GifLimits {
    /// The defaults, with the cap from `MAX_GIF_SECONDS` (default 15).
    pub fn from_env(env: &mut crate::config::EnvReader) -> GifLimits {
        let defaults = GifLimits::default();
        let max: f64 = env.optional_or("MAX_GIF_SECONDS", defaults.max_duration_secs);
        let valid = max.is_finite() && max > 0.0;
        env.check(valid, "MAX_GIF_SECONDS", "must be a number of seconds above 0");
        let max = if valid { max } else { defaults.max_duration_secs };
        GifLimits {
            max_duration_secs: max,
            default_duration_secs: defaults.default_duration_secs.min(max),
            ..defaults
        }
    }
}

/// The optional parameters as a caller sends them (all may be absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct RequestedParams {
    pub start: Option<f64>,
    pub duration: Option<f64>,
    pub width: Option<u32>,
    pub fps: Option<u32>,
}

impl GifLimits {
    /// Fills in defaults and checks bounds. A duration above the cap is capped, not refused
    /// (`true` in the second field); anything else out of bounds is a named rejection.
    pub fn resolve(&self, requested: RequestedParams) -> Result<(GifParams, bool), ProcessingError> {
        let invalid = |reason: String| ProcessingError::rejected(Code::InvalidParameter, reason);
        let start = requested.start.unwrap_or(0.0);
        if !start.is_finite() || start < 0.0 || start > self.max_start_secs {
            return Err(invalid(format!(
                "start must be between 0 and {} seconds, got {start}",
                self.max_start_secs
            )));
        }
        let duration = requested.duration.unwrap_or(self.default_duration_secs);
        if !duration.is_finite() || duration <= 0.0 {
            return Err(invalid(format!("duration must be more than 0 seconds, got {duration}")));
        }
        let capped = duration > self.max_duration_secs;
        let duration = duration.min(self.max_duration_secs);
        let width = requested.width.unwrap_or(self.default_width);
        if width < self.min_width || width > self.max_width {
            return Err(invalid(format!(
                "width must be between {} and {} pixels, got {width}",
                self.min_width, self.max_width
            )));
        }
        let fps = requested.fps.unwrap_or(self.default_fps);
        if fps == 0 || fps > self.max_fps {
            return Err(invalid(format!(
                "fps must be between 1 and {}, got {fps}",
                self.max_fps
            )));
        }
        Ok((
            GifParams {
                start_secs: start,
                duration_secs: duration,
                width,
                fps,
            },
            capped,
        ))
    }
}

/// Attribute names of the `tasks` table (partition key `task_id`, TTL on `expires_at`).
pub mod attr {
    pub const TASK_ID: &str = "task_id";
    pub const STATUS: &str = "status";
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    /// Epoch seconds; the table's TTL attribute.
    pub const EXPIRES_AT: &str = "expires_at";
    pub const SOURCE: &str = "source";
    pub const START_SECS: &str = "start_secs";
    pub const DURATION_SECS: &str = "duration_secs";
    pub const WIDTH: &str = "width";
    pub const FPS: &str = "fps";
    /// 0–100 while RUNNING.
    pub const PROGRESS: &str = "progress";
    /// Which delivery is working on the task; progress writes of an older one are refused.
    pub const RUN_ID: &str = "run_id";
    pub const ATTEMPTS: &str = "attempts";
    pub const GIF_BUCKET: &str = "gif_bucket";
    pub const GIF_KEY: &str = "gif_key";
    pub const GIF_BYTES: &str = "gif_bytes";
    pub const GIF_WIDTH: &str = "gif_width";
    pub const GIF_HEIGHT: &str = "gif_height";
    pub const GIF_FRAMES: &str = "gif_frames";
    pub const ERROR_CODE: &str = "error_code";
    pub const ERROR_MESSAGE: &str = "error_message";
}

/// Task ids are UUIDs (v4, lowercase, hyphenated): anything else cannot name a task.
pub fn is_task_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

/// `gifs/<task id>.gif`: one object per task, so a repeated run overwrites its own output.
pub fn gif_key(prefix: &str, task_id: &str) -> String {
    format!("{prefix}{task_id}.gif")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_the_duration_is_capped() {
        let limits = GifLimits::default();
        let (params, capped) = limits.resolve(RequestedParams::default()).unwrap();
        assert_eq!(
            params,
            GifParams {
                start_secs: 0.0,
                duration_secs: 5.0,
                width: 480,
                fps: 12
            }
        );
        assert!(!capped);
        let (params, capped) = limits
            .resolve(RequestedParams {
                duration: Some(600.0),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(params.duration_secs, 15.0);
        assert!(capped);
    }

    #[test]
    fn out_of_bounds_parameters_are_named() {
        let limits = GifLimits::default();
        for (requested, needle) in [
            (
                RequestedParams {
                    start: Some(-1.0),
                    ..Default::default()
                },
                "start",
            ),
            (
                RequestedParams {
                    start: Some(f64::NAN),
                    ..Default::default()
                },
                "start",
            ),
            (
                RequestedParams {
                    duration: Some(0.0),
                    ..Default::default()
                },
                "duration",
            ),
            (
                RequestedParams {
                    width: Some(4),
                    ..Default::default()
                },
                "width",
            ),
            (
                RequestedParams {
                    width: Some(5000),
                    ..Default::default()
                },
                "width",
            ),
            (
                RequestedParams {
                    fps: Some(0),
                    ..Default::default()
                },
                "fps",
            ),
            (
                RequestedParams {
                    fps: Some(120),
                    ..Default::default()
                },
                "fps",
            ),
        ] {
            let err = limits.resolve(requested).unwrap_err();
            assert_eq!(err.code(), Code::InvalidParameter);
            assert!(err.reason.starts_with(needle), "{err}");
        }
    }

    #[test]
    fn task_ids_are_lowercase_uuids() {
        assert!(is_task_id("3f2b8c1e-9d4a-4b6e-8f00-1234567890ab"));
        assert!(!is_task_id("3F2B8C1E-9D4A-4B6E-8F00-1234567890AB"));
        assert!(!is_task_id("not-a-task"));
        assert!(!is_task_id("3f2b8c1e-9d4a-4b6e-8f00-1234567890ab "));
        assert_eq!("DONE".parse(), Ok(TaskStatus::Done));
        assert!("done".parse::<TaskStatus>().is_err());
    }
}
