//! ffmpeg and ffprobe as supervised child processes.
//!
//! * An argument vector, never a shell string: names with spaces, quotes or a leading `-` are
//!   just arguments. Local paths are ours (temp files), never user-supplied keys.
//! * `-nostdin` and stdin from `/dev/null`: ffmpeg never waits on a prompt.
//! * stderr drained concurrently (so the pipe never fills and stalls the child), its last lines
//!   kept for the error message.
//! * A [`Deadline`], normally the Lambda invocation's deadline minus a margin: at the deadline
//!   the child is killed and the run fails as retryable `TIMEOUT` instead of Lambda cutting the
//!   whole invocation off mid-write.
//! * Progress parsed from `-progress pipe:1` (`out_time_us=`, `speed=`).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::time::Instant;

use crate::{Code, ProcessingError};

/// How many stderr lines an error keeps.
const STDERR_TAIL_LINES: usize = 20;
/// ffprobe's JSON is small; anything past this is not ffprobe talking to us.
const MAX_CAPTURED_STDOUT: usize = 8 * 1024 * 1024;

/// The point in time by which a child must have finished.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// From a Lambda context's deadline (milliseconds since the Unix epoch), less `margin`
    /// kept for the work after the child (upload, publish).
    pub fn from_epoch_millis(deadline_ms: u64, margin: Duration) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let left = Duration::from_millis((deadline_ms as u128).saturating_sub(now_ms) as u64);
        Deadline(Instant::now() + left.saturating_sub(margin))
    }

    pub fn after(duration: Duration) -> Self {
        Deadline(Instant::now() + duration)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn instant(&self) -> Instant {
        self.0
    }
}

/// One progress report of a running ffmpeg.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Output time written so far.
    pub out_time: Duration,
    /// Encoding speed relative to real time, when ffmpeg knows it.
    pub speed: Option<f64>,
    /// `true` on the last report.
    pub done: bool,
}

/// Parses ffmpeg's `-progress` key=value blocks; yields a [`Progress`] at each `progress=` line.
#[derive(Debug, Default)]
pub struct ProgressParser {
    out_time: Duration,
    speed: Option<f64>,
}

impl ProgressParser {
    pub fn feed(&mut self, line: &str) -> Option<Progress> {
        let (key, value) = line.trim().split_once('=')?;
        match key {
            // `out_time_us` is microseconds (so is the misnamed `out_time_ms`); N/A early on.
            "out_time_us" | "out_time_ms" => {
                if let Ok(us) = value.trim().parse::<i64>() {
                    self.out_time = Duration::from_micros(us.max(0) as u64);
                }
            }
            "speed" => {
                self.speed = value.trim().trim_end_matches('x').parse::<f64>().ok();
            }
            "progress" => {
                return Some(Progress {
                    out_time: self.out_time,
                    speed: self.speed,
                    done: value.trim() == "end",
                });
            }
            _ => {}
        }
        None
    }
}

/// What went wrong running a child.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{program} still running at the deadline after {elapsed:?}; killed. stderr: {stderr_tail}")]
    Timeout {
        program: String,
        elapsed: Duration,
        stderr_tail: String,
    },
    #[error("{program} exited with {status}. stderr: {stderr_tail}")]
    Exit {
        program: String,
        status: ExitStatus,
        stderr_tail: String,
    },
    #[error("reading {program}'s output failed: {source}")]
    Io { program: String, source: std::io::Error },
}

impl RunError {
    pub fn stderr_tail(&self) -> &str {
        match self {
            RunError::Timeout { stderr_tail, .. } | RunError::Exit { stderr_tail, .. } => stderr_tail,
            _ => "",
        }
    }

    /// The default mapping: a timeout may pass on a less loaded retry; a missing binary or a
    /// broken pipe is a deployment fault (kept in the DLQ for a redrive); a non-zero exit is
    /// decided by the caller, who knows what the input was.
    pub fn into_processing_error(self, failed_code: Code) -> ProcessingError {
        match self {
            RunError::Timeout { .. } => ProcessingError::retryable(Code::Timeout, self.to_string()),
            RunError::Spawn { .. } | RunError::Io { .. } => {
                ProcessingError::retryable(Code::ToolUnavailable, self.to_string())
            }
            RunError::Exit { .. } => ProcessingError::failed(failed_code, self.to_string()),
        }
    }
}

/// The result of a successful run.
#[derive(Debug)]
pub struct RunOutput {
    /// Standard output, when captured (ffprobe); empty when it carried progress (ffmpeg).
    pub stdout: Vec<u8>,
    pub stderr_tail: String,
    pub elapsed: Duration,
}

/// A child to run under supervision.
pub struct Supervised<'a> {
    program: PathBuf,
    args: Vec<OsString>,
    deadline: Deadline,
    on_progress: Option<Box<dyn FnMut(Progress) + Send + 'a>>,
}

impl<'a> Supervised<'a> {
    pub fn new(program: impl AsRef<Path>, deadline: Deadline) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            deadline,
            on_progress: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// ffmpeg only: asks for `-progress pipe:1` and calls `on_progress` with each report.
    pub fn on_progress(mut self, on_progress: impl FnMut(Progress) + Send + 'a) -> Self {
        self.on_progress = Some(Box::new(on_progress));
        self
    }

    pub fn argv(&self) -> &[OsString] {
        &self.args
    }

    pub async fn run(self) -> Result<RunOutput, RunError> {
        let started = Instant::now();
        let program_name = self.program.display().to_string();
        let mut args = self.args;
        if self.on_progress.is_some() {
            args.extend(["-progress", "pipe:1"].map(OsString::from));
        }
        let mut command = Command::new(&self.program);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // If the function process itself is killed (Lambda timeout, SIGKILL), the child must
        // not live on as an orphan still writing files: ask the kernel to kill it too.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| RunError::Spawn {
            program: program_name.clone(),
            source,
        })?;
        tracing::debug!(program = %program_name, args = ?args, "started child");

        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_task = tokio::spawn(keep_tail(stderr));
        let stdout_work = read_stdout(stdout, self.on_progress);

        let work = async {
            let (stdout_result, status) = tokio::join!(stdout_work, child.wait());
            (stdout_result, status)
        };
        let outcome = tokio::time::timeout_at(self.deadline.instant(), work).await;
        let (stdout_result, status) = match outcome {
            Ok(done) => done,
            Err(_elapsed) => {
                // The child is killed here rather than left to `kill_on_drop`, so that its
                // stderr closes and the tail below is complete.
                let _ = child.start_kill();
                let _ = child.wait().await;
                let stderr_tail = stderr_task.await.unwrap_or_default();
                return Err(RunError::Timeout {
                    program: program_name,
                    elapsed: started.elapsed(),
                    stderr_tail,
                });
            }
        };
        let stderr_tail = stderr_task.await.unwrap_or_default();
        let status = status.map_err(|source| RunError::Io {
            program: program_name.clone(),
            source,
        })?;
        if !status.success() {
            return Err(RunError::Exit {
                program: program_name,
                status,
                stderr_tail,
            });
        }
        let stdout = stdout_result.map_err(|source| RunError::Io {
            program: program_name,
            source,
        })?;
        Ok(RunOutput {
            stdout,
            stderr_tail,
            elapsed: started.elapsed(),
        })
    }
}

async fn read_stdout(
    stdout: impl AsyncRead + Unpin,
    on_progress: Option<Box<dyn FnMut(Progress) + Send + '_>>,
) -> std::io::Result<Vec<u8>> {
    match on_progress {
        Some(mut on_progress) => {
            let mut parser = ProgressParser::default();
            let mut lines = BufReader::new(stdout).lines();
            while let Some(line) = lines.next_line().await? {
                if let Some(progress) = parser.feed(&line) {
                    on_progress(progress);
                }
            }
            Ok(Vec::new())
        }
        None => {
            let mut captured = Vec::new();
            stdout
                .take(MAX_CAPTURED_STDOUT as u64)
                .read_to_end(&mut captured)
                .await?;
            Ok(captured)
        }
    }
}

async fn keep_tail(stderr: impl AsyncRead + Unpin) -> String {
    let mut tail: VecDeque<String> = VecDeque::with_capacity(STDERR_TAIL_LINES);
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    // Lines are read as bytes: ffmpeg echoes file metadata, which need not be UTF-8.
    while let Ok(n) = reader.read_until(b'\n', &mut buf).await {
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
        buf.clear();
        if line.is_empty() {
            continue;
        }
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    Vec::from(tail).join(" | ")
}

/// The arguments every ffmpeg run starts with: no stdin, no banner, no interactive stats,
/// errors only on stderr, overwrite our own temp outputs.
pub fn ffmpeg_base_args() -> Vec<OsString> {
    ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
        .map(OsString::from)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_blocks_are_parsed() {
        let mut parser = ProgressParser::default();
        let block = "frame=10\nout_time_us=1500000\nout_time=00:00:01.500000\nspeed=2.5x\nprogress=continue\n";
        let reports: Vec<_> = block.lines().filter_map(|l| parser.feed(l)).collect();
        assert_eq!(
            reports,
            vec![Progress {
                out_time: Duration::from_millis(1500),
                speed: Some(2.5),
                done: false
            }]
        );
        assert_eq!(parser.feed("out_time_us=N/A"), None);
        let last = parser.feed("progress=end").unwrap();
        assert!(last.done);
        assert_eq!(last.out_time, Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn a_child_past_its_deadline_is_killed_and_reported() {
        let err = Supervised::new("sleep", Deadline::after(Duration::from_millis(200)))
            .arg("30")
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Timeout { .. }), "{err}");
        assert!(err.into_processing_error(Code::TranscodeFailed).is_retryable());
    }

    #[tokio::test]
    async fn a_failing_child_reports_its_stderr_tail() {
        let err = Supervised::new("sh", Deadline::after(Duration::from_secs(10)))
            .args(["-c", "echo first >&2; echo 'the real reason' >&2; exit 3"])
            .run()
            .await
            .unwrap_err();
        match &err {
            RunError::Exit {
                status, stderr_tail, ..
            } => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr_tail, "first | the real reason");
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(
            err.into_processing_error(Code::TranscodeFailed).code(),
            Code::TranscodeFailed
        );
    }

    #[tokio::test]
    async fn arguments_with_spaces_and_dashes_reach_the_child_verbatim() {
        let out = Supervised::new("printf", Deadline::after(Duration::from_secs(10)))
            .args(["%s|", "my video+1.mp4", "-i", "$(rm -rf /)"])
            .run()
            .await
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "my video+1.mp4|-i|$(rm -rf /)|");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_retryable_deployment_fault() {
        let err = Supervised::new("/nonexistent/ffmpeg", Deadline::after(Duration::from_secs(1)))
            .run()
            .await
            .unwrap_err();
        let err = err.into_processing_error(Code::TranscodeFailed);
        assert_eq!(err.code(), Code::ToolUnavailable);
    }

    #[test]
    fn lambda_deadline_keeps_the_margin() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let deadline = Deadline::from_epoch_millis(now_ms + 60_000, Duration::from_secs(10));
        let left = deadline.remaining();
        assert!(
            left <= Duration::from_secs(50) && left > Duration::from_secs(45),
            "{left:?}"
        );
        let past = Deadline::from_epoch_millis(now_ms.saturating_sub(1000), Duration::from_secs(10));
        assert_eq!(past.remaining(), Duration::ZERO);
    }
}
