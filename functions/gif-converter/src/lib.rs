//! GIF converter (seed 000): GIF jobs from SQS → the source fetched within limits → a two-pass
//! palette GIF of the requested segment → `gifs/<task id>.gif` in the output bucket, with the
//! task in the `tasks` table kept current throughout.
//!
//! Per message:
//!
//! 1. **Claim** the task with a conditional write: QUEUED (or RUNNING, after a crash) → RUNNING
//!    with a fresh `run_id`. A task already DONE or FAILED is final, so a redelivered message
//!    does nothing at all; a job for a task that does not exist (never written, or gone with its
//!    TTL) has no task to report to, so it is parked in the DLQ as `TASK_NOT_FOUND`.
//! 2. **Fetch** the source: `http(s)` through [`fetch::SafeFetcher`] (every address vetted,
//!    every redirect re-checked, size and time limits), or `s3://` from the input bucket only.
//! 3. **Probe** it under demuxer/protocol whitelists ([`gif::probe_source`]): not a video →
//!    FAILED with the reason.
//! 4. **Convert** in two passes (palettegen, paletteuse) with progress written to the task
//!    (`progress` %, only by the run that owns it, only upwards).
//! 5. **Finish** with a conditional write (still RUNNING, still this run): DONE with the key,
//!    size and frame count, or FAILED with the code and reason.
//!
//! Faults retrying can fix (a source server down, a throttled table) hand the message back
//! to the queue; on its last delivery (`MAX_RECEIVE_COUNT`) the task is marked FAILED with the
//! fault, so no task stays RUNNING forever. Malformed messages go to the DLQ at once.

pub mod fetch;
pub mod gif;

use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::LambdaEvent;
use shared::config::{ConfigError, EnvReader};
use shared::ffmpeg::{Deadline, Progress, Supervised};
use shared::gif::{
    attr, gif_key, is_task_id, GifJob, GifLimits, GifParams, RequestedParams, TaskStatus, GIF_JOB_VERSION,
};
use shared::source_url::{policy_from_env, AddressPolicy, SourceUrl};
use shared::sqs::{deliveries, park_in_dead_letter_queue, parse_body, process_batch, Disposition};
use shared::storage::{download_to_file, head_object, upload_file, UploadOptions};
use shared::{Code, ProcessingError};
use tokio::sync::watch;
use tracing::Instrument;

use crate::fetch::{FetchLimits, SafeFetcher};
use crate::gif::{gif_args, inspect_gif, palette_args, probe_source, GifInfo};

#[derive(Debug, Clone)]
pub struct Config {
    /// `TASKS_TABLE`
    pub table: String,
    /// `GIF_BUCKET` (the output bucket) and `GIF_PREFIX` (default `gifs/`)
    pub gif_bucket: String,
    pub gif_prefix: String,
    /// `INPUT_BUCKET`: the one bucket `s3://` sources may name.
    pub input_bucket: String,
    /// `SOURCE_LOOPBACK_ALLOW_LIST`: loopback `address:port`s sources may use (local only).
    pub policy: AddressPolicy,
    /// `MAX_SOURCE_BYTES` (default 200 MiB), `CONNECT_TIMEOUT_SECS` (5), `READ_TIMEOUT_SECS`
    /// (15), `MAX_REDIRECTS` (5)
    pub fetch: FetchLimits,
    /// `MAX_GIF_SECONDS` (default 15): the same cap the API applies, applied again.
    pub limits: GifLimits,
    /// `DEAD_LETTER_QUEUE_URL`: malformed messages are parked there at once.
    pub dead_letter_queue_url: String,
    /// `MAX_RECEIVE_COUNT` (default 3): the queue's redrive limit; on that delivery a
    /// retryable fault marks the task FAILED instead of leaving it RUNNING.
    pub max_receive_count: u32,
    /// `FFMPEG_PATH` / `FFPROBE_PATH` (default: on `PATH`)
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// `WORK_DIR` (default: the system temp dir)
    pub work_dir: PathBuf,
    /// `DEADLINE_MARGIN_SECS` (default 15): kept after ffmpeg for the upload and final write.
    pub deadline_margin: Duration,
    /// `MIN_SECS_PER_MESSAGE` (default 20): a message is not started with less time left.
    pub min_time_per_message: Duration,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let defaults = FetchLimits::default();
        let config = Config {
            table: env.required("TASKS_TABLE"),
            gif_bucket: env.required("GIF_BUCKET"),
            gif_prefix: env.optional_or("GIF_PREFIX", "gifs/".to_owned()),
            input_bucket: env.required("INPUT_BUCKET"),
            policy: policy_from_env(&mut env, "SOURCE_LOOPBACK_ALLOW_LIST"),
            fetch: FetchLimits {
                max_bytes: env.optional_or("MAX_SOURCE_BYTES", defaults.max_bytes),
                connect_timeout: Duration::from_secs(
                    env.optional_or("CONNECT_TIMEOUT_SECS", defaults.connect_timeout.as_secs()),
                ),
                read_timeout: Duration::from_secs(
                    env.optional_or("READ_TIMEOUT_SECS", defaults.read_timeout.as_secs()),
                ),
                max_redirects: env.optional_or("MAX_REDIRECTS", defaults.max_redirects),
            },
            limits: GifLimits::from_env(&mut env),
            dead_letter_queue_url: env.required("DEAD_LETTER_QUEUE_URL"),
            max_receive_count: env.optional_or("MAX_RECEIVE_COUNT", 3),
            ffmpeg: env.optional_or("FFMPEG_PATH", PathBuf::from("ffmpeg")),
            ffprobe: env.optional_or("FFPROBE_PATH", PathBuf::from("ffprobe")),
            work_dir: env.optional_or("WORK_DIR", std::env::temp_dir()),
            deadline_margin: Duration::from_secs(env.optional_or("DEADLINE_MARGIN_SECS", 15)),
            min_time_per_message: Duration::from_secs(env.optional_or("MIN_SECS_PER_MESSAGE", 20)),
        };
        env.check(config.fetch.max_bytes > 0, "MAX_SOURCE_BYTES", "must be above 0");
        env.finish()?;
        Ok(config)
    }
}

/// The finished GIF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GifOutput {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    pub info: GifInfo,
}

pub struct Converter {
    pub tasks: TaskStore,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub fetcher: SafeFetcher,
    pub config: Config,
}

impl Converter {
    #[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, ProcessingError> {
        let deadline = Deadline::from_epoch_millis(event.context.deadline, self.config.deadline_margin);
        Ok(
            process_batch(event.payload, deadline, self.config.min_time_per_message, |record| {
                self.handle_message(record, deadline)
            })
            .await,
        )
    }

    async fn handle_message(&self, record: SqsMessage, deadline: Deadline) -> Disposition {
        let job = parse_body::<GifJob>(&record).and_then(|job| {
            if is_task_id(&job.task_id) {
                Ok(job)
            } else {
                Err(ProcessingError::rejected(
                    Code::MalformedMessage,
                    format!("task id {:?} is not a task id", job.task_id),
                ))
            }
        });
        let job = match job {
            Ok(job) => job,
            Err(err) => {
                return park_in_dead_letter_queue(&self.sqs, &self.config.dead_letter_queue_url, &record, &err).await
            }
        };
        let deliveries = deliveries(&record);
        let span = tracing::info_span!("task", task_id = %job.task_id, deliveries);
        self.run_task(&record, job, deliveries, deadline).instrument(span).await
    }

    async fn run_task(&self, record: &SqsMessage, job: GifJob, deliveries: u32, deadline: Deadline) -> Disposition {
        let run_id = uuid::Uuid::new_v4().to_string();
        match self.tasks.claim(&job.task_id, &run_id).await {
            Err(err) => {
                tracing::warn!(code = %err.code(), reason = %err.reason, "could not claim the task; message handed back");
                return Disposition::Retry;
            }
            Ok(Claim::Missing) => {
                // No task to mark FAILED: the DLQ is the only place this job can be answered.
                let err = ProcessingError::rejected(
                    Code::TaskNotFound,
                    format!("task {} does not exist (expired or never written)", job.task_id),
                );
                return park_in_dead_letter_queue(&self.sqs, &self.config.dead_letter_queue_url, record, &err).await;
            }
            Ok(Claim::AlreadyFinal(status)) => {
                tracing::info!(
                    status = status.as_str(),
                    "task already final; redelivered message does nothing"
                );
                return Disposition::Done;
            }
            Ok(Claim::Claimed) => tracing::info!(%run_id, "task claimed"),
        }

        let (progress_tx, progress_rx) = watch::channel(0u32);
        let work = async {
            let result = self.convert(&job, deadline, &progress_tx).await;
            // Closing the channel ends the progress writer, so the final write comes after it.
            drop(progress_tx);
            result
        };
        let (result, ()) = tokio::join!(work, self.write_progress(&job.task_id, &run_id, progress_rx));
        let finished = match &result {
            Ok(output) => {
                tracing::info!(key = %output.key, bytes = output.bytes, frames = output.info.frames, "GIF made");
                self.tasks.done(&job.task_id, &run_id, output).await
            }
            Err(err) if err.is_retryable() && deliveries < self.config.max_receive_count => {
                tracing::warn!(code = %err.code(), reason = %err.reason, "retryable fault; message handed back");
                return Disposition::Retry;
            }
            Err(err) => {
                let reason = if err.is_retryable() {
                    format!("gave up after {deliveries} deliveries: {}", err.reason)
                } else {
                    err.reason.clone()
                };
                tracing::warn!(code = %err.code(), %reason, "task failed");
                self.tasks.failed(&job.task_id, &run_id, err.code(), &reason).await
            }
        };
        match finished {
            Ok(true) => Disposition::Done,
            Ok(false) => {
                tracing::info!("a newer delivery owns the task now; this run's outcome is not recorded");
                Disposition::Done
            }
            Err(err) => {
                tracing::error!(code = %err.code(), reason = %err.reason, "could not record the outcome; message handed back");
                Disposition::Retry
            }
        }
    }

    /// Writes progress as it changes: upwards only, at most about twice a second.
    async fn write_progress(&self, task_id: &str, run_id: &str, mut progress: watch::Receiver<u32>) {
        let mut written = 0u32;
        while progress.changed().await.is_ok() {
            let percent = *progress.borrow_and_update();
            if percent < written + 5 {
                continue;
            }
            match self.tasks.progress(task_id, run_id, percent).await {
                Ok(true) => written = percent,
                Ok(false) => tracing::debug!(percent, "progress not written: another run owns the task"),
                Err(err) => tracing::warn!(code = %err.code(), "progress not written: {}", err.reason),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Fetch, probe, two passes, upload.
    pub async fn convert(
        &self,
        job: &GifJob,
        deadline: Deadline,
        progress: &watch::Sender<u32>,
    ) -> Result<GifOutput, ProcessingError> {
        let config = &self.config;
        if job.version != GIF_JOB_VERSION {
            return Err(ProcessingError::rejected(
                Code::UnsupportedVersion,
                format!("job version {} (this converter reads {GIF_JOB_VERSION})", job.version),
            ));
        }
        // The API checked all of this; the queue is not trusted to have come from the API.
        let (params, _) = config.limits.resolve(RequestedParams {
            start: Some(job.params.start_secs),
            duration: Some(job.params.duration_secs),
            width: Some(job.params.width),
            fps: Some(job.params.fps),
        })?;
        let source = SourceUrl::parse(&job.src_url, &config.policy, &config.input_bucket)?;

        let workspace = shared::storage::work_dir(&config.work_dir, "gif-")?;
        let source_path = workspace.path().join("source");
        let palette_path = workspace.path().join("palette.png");
        let gif_path = workspace.path().join("out.gif");

        let fetched = match &source {
            SourceUrl::Http(url) => {
                let mut on_bytes = |received: u64, total: Option<u64>| {
                    if let Some(total) = total.filter(|t| *t > 0) {
                        progress.send_replace((received * 20 / total).min(20) as u32);
                    }
                };
                let fetched = self
                    .fetcher
                    .fetch_to_file(url, &source_path, deadline, &mut on_bytes)
                    .await?;
                tracing::info!(bytes = fetched.bytes, redirects = fetched.redirects, from = %fetched.final_url, "source fetched");
                fetched.bytes
            }
            SourceUrl::S3 { bucket, key } => {
                let head = head_object(&self.s3, bucket, key).await?.ok_or_else(|| {
                    ProcessingError::rejected(Code::SourceMissing, format!("s3://{bucket}/{key} does not exist"))
                })?;
                let size = head.content_length.unwrap_or(0).max(0) as u64;
                if size > config.fetch.max_bytes {
                    return Err(ProcessingError::rejected(
                        Code::SourceTooLarge,
                        format!(
                            "s3://{bucket}/{key} is {size} bytes; sources may be at most {} bytes",
                            config.fetch.max_bytes
                        ),
                    ));
                }
                download_to_file(&self.s3, bucket, key, &source_path).await?
            }
        };
        progress.send_replace(20);

        let info = probe_source(&config.ffprobe, &source_path, deadline).await?;
        let video = info.require_video()?;
        let source_duration = info.duration_secs.unwrap_or(0.0);
        if source_duration > 0.0 && params.start_secs >= source_duration {
            return Err(ProcessingError::rejected(
                Code::InvalidParameter,
                format!(
                    "start {} s is past the end of the {source_duration:.2} s source",
                    params.start_secs
                ),
            ));
        }
        let (source_width, _) = video.display_size();
        let params = GifParams {
            // Never upscale: a GIF wider than its source only costs bytes.
            width: params.width.min(source_width.max(2)),
            duration_secs: if source_duration > 0.0 {
                params.duration_secs.min(source_duration - params.start_secs)
            } else {
                params.duration_secs
            },
            ..params
        };
        tracing::info!(?params, source_bytes = fetched, "converting");

        let report = |from: u32, to: u32| {
            move |p: Progress| {
                let done = (p.out_time.as_secs_f64() / params.duration_secs).clamp(0.0, 1.0);
                progress.send_if_modified(|current| {
                    let next = from + ((to - from) as f64 * done) as u32;
                    let changed = next > *current;
                    if changed {
                        *current = next;
                    }
                    changed
                });
            }
        };
        Supervised::new(&config.ffmpeg, deadline)
            .args(palette_args(&source_path, &params, &palette_path))
            .on_progress(report(20, 35))
            .run()
            .await
            .map_err(|e| e.into_processing_error(Code::GifFailed))?;
        Supervised::new(&config.ffmpeg, deadline)
            .args(gif_args(&source_path, &params, &palette_path, &gif_path))
            .on_progress(report(35, 95))
            .run()
            .await
            .map_err(|e| e.into_processing_error(Code::GifFailed))?;
        let gif = inspect_gif(&config.ffprobe, &gif_path, deadline).await?;
        if gif.frames == 0 {
            return Err(ProcessingError::failed(
                Code::GifFailed,
                "the segment produced no frames",
            ));
        }

        let key = gif_key(&config.gif_prefix, &job.task_id);
        let options = UploadOptions {
            content_type: Some("image/gif".to_owned()),
            metadata: vec![("task-id".to_owned(), job.task_id.clone())],
        };
        let bytes = upload_file(&self.s3, &gif_path, &config.gif_bucket, &key, &options).await?;
        progress.send_replace(99);
        Ok(GifOutput {
            bucket: config.gif_bucket.clone(),
            key,
            bytes,
            info: gif,
        })
    }
}

/// What claiming a task found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// RUNNING now, owned by this run.
    Claimed,
    /// DONE or FAILED already: nothing to do.
    AlreadyFinal(TaskStatus),
    /// No such task (expired, or never written).
    Missing,
}

/// The task row, written only with conditions that keep its state moving forwards.
pub struct TaskStore {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn now() -> AttributeValue {
    s(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

type UpdateResult = Result<
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>,
>;

/// The write's condition did not hold: the state moved on, which is an answer, not a fault.
fn is_condition_failure(
    err: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>,
) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception())
}

impl TaskStore {
    /// An update of `task_id` made by run `run_id`. Every write below uses these names and
    /// values (DynamoDB refuses any an expression leaves unused): the status, the run, RUNNING,
    /// the time.
    fn update(
        &self,
        task_id: &str,
        run_id: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.dynamodb
            .update_item()
            .table_name(&self.table)
            .key(attr::TASK_ID, s(task_id))
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_names("#run", attr::RUN_ID)
            .expression_attribute_values(":now", now())
            .expression_attribute_values(":running", s(TaskStatus::Running.as_str()))
            .expression_attribute_values(":run", s(run_id))
    }

    /// QUEUED or RUNNING → RUNNING, owned by `run_id`; anything else is reported, not changed.
    pub async fn claim(&self, task_id: &str, run_id: &str) -> Result<Claim, ProcessingError> {
        let result = self
            .update(task_id, run_id)
            .update_expression(
                "SET #status = :running, #run = :run, #progress = :zero, #updated = :now ADD #attempts :one",
            )
            .condition_expression(
                "attribute_exists(#id) AND (#status = :queued OR #status = :running) AND #expires > :epoch",
            )
            .expression_attribute_names("#id", attr::TASK_ID)
            .expression_attribute_names("#progress", attr::PROGRESS)
            .expression_attribute_names("#attempts", attr::ATTEMPTS)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_values(":queued", s(TaskStatus::Queued.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":epoch", n(chrono::Utc::now().timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(err) if is_condition_failure(&err) => {
                let item = self
                    .dynamodb
                    .get_item()
                    .table_name(&self.table)
                    .key(attr::TASK_ID, s(task_id))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| ProcessingError::from_sdk("DynamoDB GetItem", e))?
                    .item;
                let status = item
                    .as_ref()
                    .and_then(|i| i.get(attr::STATUS))
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| v.parse::<TaskStatus>().ok());
                Ok(match status {
                    Some(status) if status.is_final() => Claim::AlreadyFinal(status),
                    _ => Claim::Missing,
                })
            }
            Err(err) => Err(ProcessingError::from_sdk("DynamoDB UpdateItem (claim)", err)),
        }
    }

    /// Raises the progress; `false` when this run no longer owns the task.
    pub async fn progress(&self, task_id: &str, run_id: &str, percent: u32) -> Result<bool, ProcessingError> {
        let result = self
            .update(task_id, run_id)
            .update_expression("SET #progress = :p, #updated = :now")
            .condition_expression("#status = :running AND #run = :run AND #progress < :p")
            .expression_attribute_names("#progress", attr::PROGRESS)
            .expression_attribute_values(":p", n(percent.min(99)))
            .send()
            .await;
        self.conditional(result, "progress")
    }

    /// RUNNING (this run) → DONE with the GIF's key and figures.
    pub async fn done(&self, task_id: &str, run_id: &str, output: &GifOutput) -> Result<bool, ProcessingError> {
        let result = self
            .update(task_id, run_id)
            .update_expression(
                "SET #status = :done, #progress = :hundred, #updated = :now, #bucket = :bucket, #key = :key, \
                 #bytes = :bytes, #width = :width, #height = :height, #frames = :frames REMOVE #code, #message",
            )
            .condition_expression("#status = :running AND #run = :run")
            .expression_attribute_names("#progress", attr::PROGRESS)
            .expression_attribute_names("#bucket", attr::GIF_BUCKET)
            .expression_attribute_names("#key", attr::GIF_KEY)
            .expression_attribute_names("#bytes", attr::GIF_BYTES)
            .expression_attribute_names("#width", attr::GIF_WIDTH)
            .expression_attribute_names("#height", attr::GIF_HEIGHT)
            .expression_attribute_names("#frames", attr::GIF_FRAMES)
            .expression_attribute_names("#code", attr::ERROR_CODE)
            .expression_attribute_names("#message", attr::ERROR_MESSAGE)
            .expression_attribute_values(":done", s(TaskStatus::Done.as_str()))
            .expression_attribute_values(":hundred", n(100))
            .expression_attribute_values(":bucket", s(&output.bucket))
            .expression_attribute_values(":key", s(&output.key))
            .expression_attribute_values(":bytes", n(output.bytes))
            .expression_attribute_values(":width", n(output.info.width))
            .expression_attribute_values(":height", n(output.info.height))
            .expression_attribute_values(":frames", n(output.info.frames))
            .send()
            .await;
        self.conditional(result, "done")
    }

    /// RUNNING (this run) → FAILED with the code and reason.
    pub async fn failed(&self, task_id: &str, run_id: &str, code: Code, reason: &str) -> Result<bool, ProcessingError> {
        let result = self
            .update(task_id, run_id)
            .update_expression("SET #status = :failed, #updated = :now, #code = :code, #message = :message")
            .condition_expression("#status = :running AND #run = :run")
            .expression_attribute_names("#code", attr::ERROR_CODE)
            .expression_attribute_names("#message", attr::ERROR_MESSAGE)
            .expression_attribute_values(":failed", s(TaskStatus::Failed.as_str()))
            .expression_attribute_values(":code", s(code.as_str()))
            .expression_attribute_values(":message", s(&reason.chars().take(2000).collect::<String>()))
            .send()
            .await;
        self.conditional(result, "failed")
    }

    fn conditional(&self, result: UpdateResult, what: &str) -> Result<bool, ProcessingError> {
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(ProcessingError::from_sdk(&format!("DynamoDB UpdateItem ({what})"), err)),
        }
    }
}

#[cfg(test)]
mod tests;
