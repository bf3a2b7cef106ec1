//! Clip trimmer (seed 002): an SQS clip request `{clipId, cameraId, startTimestampInMs,
//! endTimestampInMs, retryTimestamps}` → the camera's recordings, found through the camera
//! API and read from the origin bucket → one MP4 clip of exactly that range plus PNG
//! thumbnails in the destination bucket → the camera API told → a result on the SNS topic.
//!
//! Every request gets exactly one answer per delivery, published on `AWS_SNS_TOPIC` with the
//! message attributes `job=clip` and `status`:
//!
//! | status               | when                                                                   |
//! |----------------------|------------------------------------------------------------------------|
//! | `CLIP_AVAILABLE`     | the clip and thumbnails are stored (seed 002's result shape)           |
//! | `CLIP_PENDING`       | the recordings do not cover the range yet and the request is younger than `SQS_RETRY_LIMIT`: it is re-queued with a delay of `SQS_TIMEOUT` |
//! | `CLIP_NOT_AVAILABLE` | still not covered after `SQS_RETRY_LIMIT`                              |
//! | `CLIP_OUT_OF_RANGE`  | the range starts more than `OUT_OF_RANGE_LIMIT` ago (no API call made) |
//! | `CLIP_INVALID`       | the request is malformed or impossible, or names an unknown camera     |
//! | `CLIP_FAILED`        | a recording is missing, corrupt or unusable, or ffmpeg failed          |
//!
//! Faults that retrying can fix (camera API down or 5xx, S3 throttling) hand the message back
//! through the batch response, with its visibility extended exponentially (the backoff), and
//! past the redrive limit it lands in the DLQ. A message that is not a request at all is
//! also parked in the DLQ with the reason, besides its `CLIP_INVALID` result.
//!
//! Re-queueing ("retry-by-requeue") sends a copy and then lets the original finish, so exactly
//! one copy is in flight; if the copy cannot be sent, the original is retried instead. When an
//! invocation's deadline is too close to finish a clip, the request is handed on the same way
//! (at most `MAX_DEADLINE_REQUEUES` times) rather than cut off.

pub mod camera_api;
pub mod cut;
pub mod media;
pub mod recordings;
pub mod replica;
pub mod request;
pub mod schedule;
pub mod thumbnails;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use sha2::Digest;
use shared::config::{ConfigError, EnvReader};
use shared::ffmpeg::Deadline;
use shared::ledger::{Ledger, OutcomeKey, Publication};
use shared::publish::Attribute;
use shared::sqs::{park_in_dead_letter_queue, process_batch, Disposition};
use shared::storage::{head_object, upload_file, work_dir, UploadOptions};
use shared::{ErrorKind, ProcessingError};
use tracing::Instrument;

use crate::camera_api::{CameraApi, ClipNotice};
use crate::cut::{Cutter, Mode, Part, CLIP_FAILED};
use crate::recordings::{NameFormat, Origin};
use crate::replica::Replica;
use crate::request::{ClipRequest, CLIP_INVALID};
use crate::schedule::{Coverage, Gap, Limits, NotCovered};
use crate::thumbnails::CappedSize;

#[derive(Debug, Clone)]
pub struct Config {
    /// `CLIP_DOWNLOAD_DEST`: where recordings and pieces are kept while a clip is made.
    pub download_dest: PathBuf,
    /// `TIMESTAMP_FORMAT` / `OLD_FILE_FORMAT`: how recording names carry their start.
    pub names: NameFormat,
    /// `SQS_RETRY_LIMIT` / `OUT_OF_RANGE_LIMIT` (seconds in the environment).
    pub limits: Limits,
    /// `CAM_SERVICES_URL`
    pub camera_api_url: String,
    /// `CAMERA_API_TIMEOUT_SECS` (default 10)
    pub camera_api_timeout: Duration,
    /// `CLIP_URL`: the public base URL of the destination bucket (the CloudFront domain).
    pub clip_url: String,
    /// `RECORDINGS_URL`, `S3_BUCKET_ORIGIN`, `S3_BUCKET_ORIGIN_DIR`
    pub origin: Origin,
    /// `THUMBNAIL_SIZES` (default 300,640,1500,3000)
    pub thumbnail_sizes: Vec<u32>,
    /// `VIDEO_MAX_LEN` (seconds; default 600)
    pub max_len_ms: i64,
    /// `S3_BUCKET_DESTINATION` and `CLIP_KEY_PREFIX` (default `clips/`)
    pub destination_bucket: String,
    pub key_prefix: String,
    /// `AWS_SNS_TOPIC`: where results go.
    pub topic_arn: String,
    /// `AWS_SQS_QUEUE_URL`: the queue requests come from and are re-queued to.
    pub queue_url: String,
    /// `SQS_TIMEOUT`: the delay of a re-queued request, seconds (SQS allows at most 900).
    pub requeue_delay_secs: i32,
    /// `DEAD_LETTER_QUEUE_URL`: messages that are not requests at all are parked there.
    pub dead_letter_queue_url: String,
    /// `GAP_TOLERANCE_MS` (default 1000): a hole between recordings up to this long is
    /// reported in the result rather than making the clip unavailable.
    pub gap_tolerance_ms: i64,
    /// `FFMPEG_PATH` / `FFPROBE_PATH`
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// `DEADLINE_MARGIN_SECS` (default 15): time kept after ffmpeg for uploads and results.
    pub deadline_margin: Duration,
    /// `MIN_SECS_PER_CLIP` (default 20): a clip is not started with less time left.
    pub min_time_per_clip: Duration,
    /// `MAX_DEADLINE_REQUEUES` (default 3)
    pub max_deadline_requeues: u32,
    /// `RETRY_BACKOFF_SECS` (default 10): the first redelivery delay after a retryable fault;
    /// doubled on every further receive, at most 900.
    pub retry_backoff_secs: i32,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let old_file_format = parse_bool(&env.optional_or("OLD_FILE_FORMAT", "false".to_owned()));
        env.check(old_file_format.is_some(), "OLD_FILE_FORMAT", "must be true or false");
        let old_file_format = old_file_format.unwrap_or(false);
        let default_format = if old_file_format {
            "%Y%m%dT%H%M"
        } else {
            "%Y%m%dT%H%M%S"
        };
        let requeue_delay_secs: i32 = env.optional_or("SQS_TIMEOUT", 60);
        env.check(
            (0..=900).contains(&requeue_delay_secs),
            "SQS_TIMEOUT",
            "must be 0 to 900 seconds (SQS's longest delay)",
        );
        let thumbnail_sizes: Vec<u32> = env.list_or("THUMBNAIL_SIZES", vec![300, 640, 1500, 3000]);
        env.check(
            thumbnail_sizes.iter().all(|w| (16..=8192).contains(w)),
            "THUMBNAIL_SIZES",
            "widths must be 16 to 8192 px",
        );
        let max_len_secs: i64 = env.optional_or("VIDEO_MAX_LEN", 600);
        env.check(max_len_secs > 0, "VIDEO_MAX_LEN", "must be positive (seconds)");
        let config = Config {
            download_dest: env.optional_or("CLIP_DOWNLOAD_DEST", std::env::temp_dir()),
            names: NameFormat {
                timestamp_format: env.optional_or("TIMESTAMP_FORMAT", default_format.to_owned()),
                old_file_format,
            },
            limits: Limits {
                retry_limit_ms: env.optional_or::<i64>("SQS_RETRY_LIMIT", 15 * 60) * 1000,
                out_of_range_ms: env.optional_or::<i64>("OUT_OF_RANGE_LIMIT", 3 * 86_400) * 1000,
            },
            camera_api_url: env.required("CAM_SERVICES_URL"),
            camera_api_timeout: Duration::from_secs(env.optional_or("CAMERA_API_TIMEOUT_SECS", 10)),
            clip_url: env.required::<String>("CLIP_URL").trim_end_matches('/').to_owned(),
            origin: Origin {
                recordings_url: env.required("RECORDINGS_URL"),
                bucket: env.required("S3_BUCKET_ORIGIN"),
                dir: env.optional_or("S3_BUCKET_ORIGIN_DIR", String::new()),
            },
            thumbnail_sizes,
            max_len_ms: max_len_secs * 1000,
            destination_bucket: env.required("S3_BUCKET_DESTINATION"),
            key_prefix: env.optional_or("CLIP_KEY_PREFIX", "clips/".to_owned()),
            topic_arn: env.required("AWS_SNS_TOPIC"),
            queue_url: env.required("AWS_SQS_QUEUE_URL"),
            requeue_delay_secs,
            dead_letter_queue_url: env.required("DEAD_LETTER_QUEUE_URL"),
            gap_tolerance_ms: env.optional_or("GAP_TOLERANCE_MS", 1000),
            ffmpeg: env.optional_or("FFMPEG_PATH", PathBuf::from("ffmpeg")),
            ffprobe: env.optional_or("FFPROBE_PATH", PathBuf::from("ffprobe")),
            deadline_margin: Duration::from_secs(env.optional_or("DEADLINE_MARGIN_SECS", 15)),
            min_time_per_clip: Duration::from_secs(env.optional_or("MIN_SECS_PER_CLIP", 20)),
            max_deadline_requeues: env.optional_or("MAX_DEADLINE_REQUEUES", 3),
            retry_backoff_secs: env.optional_or("RETRY_BACKOFF_SECS", 10),
        };
        env.finish()?;
        Ok(config)
    }

    /// `clips/<cameraId>/<clipId>.mp4`, and the thumbnails beside it as
    /// `clips/<cameraId>/<clipId><width>.png` (seed 002's shape, under our prefix).
    pub fn clip_key(&self, request: &ClipRequest) -> String {
        format!("{}{}/{}.mp4", self.key_prefix, request.camera_id, request.clip_id)
    }

    pub fn thumbnail_key(&self, request: &ClipRequest, size: &str) -> String {
        format!("{}{}/{}{size}.png", self.key_prefix, request.camera_id, request.clip_id)
    }

    pub fn public_url(&self, key: &str) -> String {
        format!("{}/{key}", self.clip_url)
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}

/// The outcome of a request, as published (seed 002's SNS message, plus what explains it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClipResult {
    pub clip_id: Option<String>,
    pub camera_id: Option<String>,
    pub start_timestamp_in_ms: Option<i64>,
    pub end_timestamp_in_ms: Option<i64>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<ThumbnailLinks>,
    /// A stable code for every status but `CLIP_AVAILABLE` (e.g. `CLIP_INVALID`, `RECORDING_CORRUPT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Holes between recordings inside the range (the clip joins across them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_timestamps: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_in_seconds: Option<i32>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClipLink {
    pub url: String,
    pub key: String,
    /// `smart-cut` or `re-encode`, and why a clip was re-encoded.
    pub mode: String,
    #[serde(rename = "modeReason", skip_serializing_if = "Option::is_none")]
    pub mode_reason: Option<String>,
    #[serde(rename = "durationMs")]
    pub duration_ms: i64,
    pub frames: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ThumbnailLinks {
    /// With `{size}` standing for each of `sizes`.
    pub url: String,
    pub key: String,
    pub sizes: Vec<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capped: Vec<CappedSize>,
}

impl ClipResult {
    fn for_request(request: &ClipRequest, status: &'static str) -> Self {
        ClipResult {
            start_timestamp_in_ms: Some(request.start_timestamp_in_ms),
            end_timestamp_in_ms: Some(request.end_timestamp_in_ms),
            ..Self::for_ids(Some(request.clip_id.clone()), Some(request.camera_id.clone()), status)
        }
    }

    /// A result for what may not even be a request: only the ids that could be read from it.
    fn for_ids(clip_id: Option<String>, camera_id: Option<String>, status: &'static str) -> Self {
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

    /// Which outcome this result reports, for the ledger: the request (or, for what is not a
    /// request, the body itself) and what it came to. A pending result also counts its retries,
    /// since each re-queued attempt reports its own.
    fn outcome(&self, body: &str) -> OutcomeKey {
        let code = self.code.as_deref().unwrap_or("");
        match (
            &self.clip_id,
            &self.camera_id,
            self.start_timestamp_in_ms,
            self.end_timestamp_in_ms,
        ) {
            (Some(clip_id), Some(camera_id), Some(start), Some(end)) => {
                let retries = match self.status {
                    CLIP_PENDING => self.retry_timestamps.as_ref().map_or(0, Vec::len).to_string(),
                    _ => String::new(),
                };
                OutcomeKey::new([
                    "clip",
                    clip_id,
                    camera_id,
                    &start.to_string(),
                    &end.to_string(),
                    self.status,
                    code,
                    &retries,
                ])
            }
            _ => OutcomeKey::new(["clip-message", body, self.status, code]),
        }
    }

    fn with_reason(mut self, code: &str, reason: impl Into<String>) -> Self {
        self.code = Some(code.to_owned());
        self.reason = Some(reason.into());
        self
    }

    pub fn attributes(&self) -> Vec<(&'static str, Attribute)> {
        let mut attributes = vec![
            ("job", Attribute::Text("clip".to_owned())),
            ("status", Attribute::Text(self.status.to_owned())),
        ];
        if let Some(code) = &self.code {
            attributes.push(("reason", Attribute::Text(code.clone())));
        }
        attributes
    }
}

pub const CLIP_AVAILABLE: &str = "CLIP_AVAILABLE";
pub const CLIP_PENDING: &str = "CLIP_PENDING";
pub const CLIP_NOT_AVAILABLE: &str = "CLIP_NOT_AVAILABLE";
pub const CLIP_OUT_OF_RANGE: &str = "CLIP_OUT_OF_RANGE";

/// A clip made (or found already made) and what it cost; the benchmarks read the figures.
#[derive(Debug, Clone)]
pub struct MadeClip {
    pub clip: ClipLink,
    pub thumbnail: ThumbnailLinks,
    pub reused: bool,
    /// Bytes read from the origin bucket for this clip.
    pub origin_bytes: u64,
    pub clip_bytes: u64,
    pub cut_time: Duration,
    pub thumbnail_time: Duration,
}

pub struct Trimmer {
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// One result per outcome, and one re-queued copy per attempt, when a request arrives twice.
    pub ledger: Ledger,
    pub camera_api: CameraApi,
    pub config: Config,
}

/// What one message comes to, before it is reported.
enum Step {
    Report(ClipResult),
    /// Re-queue a copy (with this delay) and report `CLIP_PENDING` or nothing.
    Requeue {
        request: ClipRequest,
        delay_secs: i32,
        report: Option<ClipResult>,
    },
    Retry(ProcessingError),
}

impl Trimmer {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Trimmer {
            s3: shared::clients::s3_client(sdk),
            sns: shared::clients::sns_client(sdk),
            sqs: shared::clients::sqs_client(sdk),
            ledger: Ledger::from_env(sdk),
            camera_api: CameraApi::new(&config.camera_api_url, config.camera_api_timeout)?,
            config,
        })
    }

    #[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, ProcessingError> {
        let deadline = Deadline::from_epoch_millis(event.context.deadline, self.config.deadline_margin);
        // Every message is at least answered (a result or a re-queue), so none is skipped for
        // lack of time here; a clip that cannot be finished in time is handed on instead.
        let response = process_batch(event.payload, deadline, Duration::from_secs(2), |record| {
            self.handle_message(record, deadline)
        })
        .await;
        Ok(response)
    }

    async fn handle_message(&self, record: SqsMessage, deadline: Deadline) -> Disposition {
        let body = record.body.clone().unwrap_or_default();
        // Requests are sent to the queue directly; one arriving through SNS is unwrapped.
        let body = shared::sqs::unwrap_sns_envelope(&body).unwrap_or(body);
        let request = match request::parse(&body) {
            Ok((request, style)) => {
                tracing::debug!(?style, "request parsed");
                request
            }
            Err(err) => {
                // Not a request at all: answered with whatever ids it carries, and kept.
                let (clip_id, camera_id) = request::salvage_ids(&body);
                let result = ClipResult::for_ids(clip_id, camera_id, CLIP_INVALID);
                return self.reject_message(&record, result, err, true).await;
            }
        };
        if let Err(err) = request.validate(self.config.max_len_ms) {
            let result = ClipResult::for_request(&request, CLIP_INVALID);
            return self.reject_message(&record, result, err, false).await;
        }
        let span = tracing::info_span!(
            "clip",
            clip_id = %request.clip_id,
            camera_id = %request.camera_id,
            start = request.start_timestamp_in_ms,
            end = request.end_timestamp_in_ms,
        );
        async {
            let sent_ms = record.attributes.get("SentTimestamp").and_then(|s| s.parse().ok());
            let step = self.decide(&request, sent_ms, deadline).await;
            self.carry_out(step, &record).await
        }
        .instrument(span)
        .await
    }

    /// A body that is not a valid request: `CLIP_INVALID` on the topic, and a body that is
    /// not a request at all (`park`) is also parked in the DLQ, so nothing of it is lost.
    async fn reject_message(
        &self,
        record: &SqsMessage,
        result: ClipResult,
        err: ProcessingError,
        park: bool,
    ) -> Disposition {
        tracing::warn!(code = err.code, reason = %err.reason, "request rejected");
        let result = result.with_reason(err.code, err.reason.clone());
        if self.publish(&result, record).await.is_err() {
            return Disposition::Retry;
        }
        if park {
            return park_in_dead_letter_queue(&self.sqs, &self.config.dead_letter_queue_url, record, &err).await;
        }
        Disposition::Done
    }

    /// Decides what a valid request comes to, making the clip if it can be made.
    async fn decide(&self, request: &ClipRequest, sent_ms: Option<i64>, deadline: Deadline) -> Step {
        let config = &self.config;
        let now = now_ms();
        if schedule::is_out_of_range(request.start_timestamp_in_ms, now, config.limits) {
            let days = config.limits.out_of_range_ms as f64 / 86_400_000.0;
            return Step::Report(ClipResult::for_request(request, CLIP_OUT_OF_RANGE).with_reason(
                CLIP_OUT_OF_RANGE,
                format!("the range starts more than {days} days ago; recordings are not kept that long"),
            ));
        }
        let alias = match self.camera_api.alias(&request.camera_id).await {
            Ok(alias) => alias,
            Err(err) => return self.step_for_error(request, err),
        };
        let coverage = if request.end_timestamp_in_ms > now {
            // Recordings of the future do not exist yet; no need to ask.
            schedule::coverage(Vec::new(), request.start_timestamp_in_ms, request.end_timestamp_in_ms)
        } else {
            match self.find_recordings(&alias, request).await {
                Ok(coverage) => coverage,
                Err(err) => return self.step_for_error(request, err),
            }
        };
        let range = (request.start_timestamp_in_ms, request.end_timestamp_in_ms);
        if !coverage.is_complete(range, config.gap_tolerance_ms) {
            let first_seen = schedule::first_seen_ms(&request.retry_timestamps, sent_ms, now);
            let uncovered: i64 = coverage.gaps.iter().map(Gap::duration_ms).sum();
            return match schedule::not_covered(first_seen, now, config.limits) {
                NotCovered::Pending => {
                    let mut again = request.clone();
                    again.retry_timestamps.push(now);
                    let mut report = ClipResult::for_request(request, CLIP_PENDING).with_reason(
                        CLIP_PENDING,
                        format!("recordings do not cover {uncovered} ms of the range yet; trying again later"),
                    );
                    report.gaps = coverage.gaps.clone();
                    report.retry_timestamps = Some(again.retry_timestamps.clone());
                    report.next_attempt_in_seconds = Some(config.requeue_delay_secs);
                    Step::Requeue {
                        request: again,
                        delay_secs: config.requeue_delay_secs,
                        report: Some(report),
                    }
                }
                NotCovered::NotAvailable => {
                    let mut report = ClipResult::for_request(request, CLIP_NOT_AVAILABLE).with_reason(
                        CLIP_NOT_AVAILABLE,
                        format!(
                            "recordings still do not cover {uncovered} ms of the range after {} s",
                            config.limits.retry_limit_ms / 1000
                        ),
                    );
                    report.gaps = coverage.gaps.clone();
                    Step::Report(report)
                }
            };
        }
        if deadline.remaining() < config.min_time_per_clip {
            return self.hand_on(request, "too little time left in this invocation to start the clip");
        }
        // Boxed: the clip-making future is large, and would otherwise sit inline in every
        // future that awaits it.
        match Box::pin(self.make_clip(request, &alias, &coverage, deadline, None)).await {
            Ok(made) => {
                let mut report = ClipResult::for_request(request, CLIP_AVAILABLE);
                report.bucket = Some(config.destination_bucket.clone());
                report.clip = Some(made.clip);
                report.thumbnail = Some(made.thumbnail);
                report.gaps = coverage.gaps.clone();
                Step::Report(report)
            }
            Err(err) if err.code == "TIMEOUT" => self.hand_on(request, &err.reason),
            Err(err) => self.step_for_error(request, err),
        }
    }

    /// Hands a request whose clip cannot be finished in this invocation to a fresh one.
    fn hand_on(&self, request: &ClipRequest, why: &str) -> Step {
        if request.deadline_requeues >= self.config.max_deadline_requeues {
            return Step::Report(ClipResult::for_request(request, CLIP_FAILED).with_reason(
                "CLIP_TOO_SLOW",
                format!(
                    "{why}; handed on {} times already, which is the limit (MAX_DEADLINE_REQUEUES)",
                    request.deadline_requeues
                ),
            ));
        }
        tracing::warn!(why, "handing the request on to a new invocation");
        let mut again = request.clone();
        again.deadline_requeues += 1;
        Step::Requeue {
            request: again,
            delay_secs: 0,
            report: None,
        }
    }

    fn step_for_error(&self, request: &ClipRequest, err: ProcessingError) -> Step {
        match err.kind {
            ErrorKind::Retryable => Step::Retry(err),
            ErrorKind::Rejected => {
                Step::Report(ClipResult::for_request(request, CLIP_INVALID).with_reason(err.code, err.reason))
            }
            ErrorKind::Failed => {
                Step::Report(ClipResult::for_request(request, CLIP_FAILED).with_reason(err.code, err.reason))
            }
        }
    }

    async fn carry_out(&self, step: Step, record: &SqsMessage) -> Disposition {
        match step {
            Step::Report(result) => match self.publish(&result, record).await {
                Ok(_) => Disposition::Done,
                Err(_) => Disposition::Retry,
            },
            Step::Requeue {
                request,
                delay_secs,
                report,
            } => {
                // Report first: if the copy then cannot be sent, the original comes back and
                // is decided again; sending first could leave two copies in flight.
                if let Some(report) = &report {
                    match self.publish(report, record).await {
                        Ok(Publication::Published(_) | Publication::AlreadyPublished { by_this_delivery: true }) => {}
                        Ok(_) => {
                            // Another delivery of this very request reported this attempt and
                            // re-queued it: a second copy would double the chain.
                            tracing::info!("duplicate of a request already re-queued; not re-queued again");
                            return Disposition::Done;
                        }
                        Err(_) => return Disposition::Retry,
                    }
                }
                match self.requeue(&request, delay_secs).await {
                    Ok(()) => Disposition::Done,
                    Err(err) => {
                        tracing::error!(code = err.code, reason = %err.reason, "could not re-queue; the original will be retried");
                        Disposition::Retry
                    }
                }
            }
            Step::Retry(err) => {
                let receives: i32 = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                let delay = backoff_secs(self.config.retry_backoff_secs, receives);
                tracing::warn!(code = err.code, reason = %err.reason, receives, delay, "retryable fault; message handed back");
                self.delay_redelivery(record, delay).await;
                Disposition::Retry
            }
        }
    }

    async fn requeue(&self, request: &ClipRequest, delay_secs: i32) -> Result<(), ProcessingError> {
        let body = serde_json::to_string(request).expect("a request serializes");
        self.sqs
            .send_message()
            .queue_url(&self.config.queue_url)
            .message_body(body)
            .delay_seconds(delay_secs)
            .send()
            .await
            .map_err(|e| ProcessingError::from_sdk("SQS SendMessage", e))?;
        tracing::info!(
            delay_secs,
            retries = request.retry_timestamps.len(),
            "request re-queued"
        );
        Ok(())
    }

    /// The backoff: the message stays invisible for `delay` seconds before its next delivery.
    async fn delay_redelivery(&self, record: &SqsMessage, delay: i32) {
        let Some(receipt_handle) = record.receipt_handle.as_deref() else {
            return;
        };
        if let Err(err) = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.config.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(delay)
            .send()
            .await
        {
            // Not fatal: the queue's own visibility timeout applies instead.
            tracing::warn!(error = %shared::error::DisplayErrorChain(&err), "could not set the retry delay");
        }
    }

    /// Publishes `result` once per outcome (see [`shared::ledger`]).
    async fn publish(&self, result: &ClipResult, record: &SqsMessage) -> Result<Publication, ProcessingError> {
        let outcome = result.outcome(record.body.as_deref().unwrap_or(""));
        let delivery = record.message_id.as_deref().unwrap_or("");
        match self
            .ledger
            .publish_once(
                &self.sns,
                &self.config.topic_arn,
                &outcome,
                delivery,
                result,
                &result.attributes(),
            )
            .await
        {
            Ok(publication) => {
                tracing::info!(status = result.status, code = ?result.code, publication = publication.as_str(), "result answered");
                Ok(publication)
            }
            Err(err) => {
                tracing::error!(code = err.code, reason = %err.reason, "could not publish the result; message handed back");
                Err(err)
            }
        }
    }

    async fn find_recordings(&self, alias: &str, request: &ClipRequest) -> Result<Coverage, ProcessingError> {
        let listed = self
            .camera_api
            .recordings(alias, request.start_timestamp_in_ms, request.end_timestamp_in_ms)
            .await?;
        let recordings = listed
            .iter()
            .map(|l| self.config.origin.resolve(l, &self.config.names))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!(listed = recordings.len(), "recordings listed");
        Ok(schedule::coverage(
            recordings,
            request.start_timestamp_in_ms,
            request.end_timestamp_in_ms,
        ))
    }

    /// Makes the clip and thumbnails of a covered request (or finds them made), uploads them
    /// and tells the camera API. `force` picks the mode (benchmarks); otherwise smart cut
    /// wherever the recordings allow it.
    pub async fn make_clip(
        &self,
        request: &ClipRequest,
        alias: &str,
        coverage: &Coverage,
        deadline: Deadline,
        force: Option<Mode>,
    ) -> Result<MadeClip, ProcessingError> {
        let config = &self.config;
        let clip_key = config.clip_key(request);
        let fingerprint = fingerprint(request, coverage);
        let thumbnail_key = config.thumbnail_key(request, "{size}");
        if let Some(made) = self.existing_clip(&clip_key, &fingerprint, &thumbnail_key).await? {
            tracing::info!(clip_key, "this clip was already made; reused");
            self.notify_camera_api(request, alias, &made).await?;
            return Ok(made);
        }
        let work = work_dir(&config.download_dest, "clip-")?;

        // The index of every recording, then only the bytes each part needs.
        let mut replicas = Vec::new();
        let mut indexes = Vec::new();
        for (i, segment) in coverage.segments.iter().enumerate() {
            let path = work.path().join(format!("recording-{i}"));
            let mut replica = Replica::open(&self.s3, &config.origin.bucket, &segment.recording.key, &path).await?;
            let window = Some((ms(segment.from_ms), ms(segment.to_ms)));
            let index = match media::probe_index(&config.ffprobe, &replica.path, deadline, window).await {
                Ok(index) => index,
                Err(err) if !replica.complete => {
                    // An index we cannot read from the ranges: read the whole file instead.
                    replica.fetch_whole(&self.s3, err.reason).await?;
                    media::probe_index(&config.ffprobe, &replica.path, deadline, window).await?
                }
                Err(err) => return Err(with_recording(err, &segment.recording.key)),
            };
            replicas.push(replica);
            indexes.push(index);
        }
        // Which segment each plan is for; the parts borrow that segment's replica and index.
        let mut plans = Vec::new();
        for (i, segment) in coverage.segments.iter().enumerate() {
            let window = (ms(segment.from_ms), ms(segment.to_ms));
            let Some(plan) = cut::plan_segment(&indexes[i], window.0, window.1) else {
                continue; // less than one frame of this recording is in the range
            };
            replicas[i].fetch_range(&self.s3, plan.bytes.0, plan.bytes.1).await?;
            media::probe_params(&config.ffprobe, &replicas[i].path, deadline, window, &mut indexes[i])
                .await
                .map_err(|e| with_recording(e, &segment.recording.key))?;
            plans.push((i, plan));
        }
        if plans.is_empty() {
            return Err(ProcessingError::failed(
                CLIP_FAILED,
                "the recordings have no frame inside the range",
            ));
        }
        let origin_bytes = replicas.iter().map(|r| r.bytes_fetched).sum();
        let parts: Vec<Part> = plans
            .into_iter()
            .map(|(i, plan)| Part {
                file: &replicas[i].path,
                index: &indexes[i],
                plan,
            })
            .collect();
        let mode = force.unwrap_or_else(|| {
            let all: Vec<&media::MediaIndex> = parts.iter().map(|p| p.index).collect();
            match cut::smart_cut_refusal(&all) {
                None => Mode::SmartCut,
                Some(reason) => {
                    tracing::warn!(%reason, "smart cut not possible; re-encoding the whole clip");
                    Mode::ReEncode { reason }
                }
            }
        });

        let started = Instant::now();
        let clip_path = work.path().join("clip.mp4");
        let cutter = Cutter {
            ffmpeg: &config.ffmpeg,
            work_dir: work.path(),
            deadline,
        };
        let cut = cutter.cut(&parts, mode, &clip_path).await?;
        let cut_time = started.elapsed();
        tracing::info!(
            mode = cut.mode.name(),
            frames = cut.frames,
            copied = cut.frames_copied,
            ?cut_time,
            origin_bytes,
            "clip cut"
        );

        let started = Instant::now();
        let first = &parts[0];
        let source_width = first.index.video.width;
        let thumbnail_plan = thumbnails::plan(&config.thumbnail_sizes, source_width);
        let thumbnail_files = thumbnails::make(
            &config.ffmpeg,
            deadline,
            first.file,
            first.index,
            first.plan.first_pts,
            &thumbnail_plan.widths,
            work.path(),
        )
        .await?;
        let thumbnail_time = started.elapsed();

        let duration_ms = parts
            .iter()
            .map(|p| (f64::from(p.plan.frames) * p.index.frame_duration() * 1000.0).round() as i64)
            .sum();
        let clip = ClipLink {
            url: config.public_url(&clip_key),
            key: clip_key.clone(),
            mode: cut.mode.name().to_owned(),
            mode_reason: match &cut.mode {
                Mode::ReEncode { reason } => Some(reason.clone()),
                Mode::SmartCut => None,
            },
            duration_ms,
            frames: cut.frames,
        };
        let thumbnail = ThumbnailLinks {
            url: config.public_url(&thumbnail_key),
            key: thumbnail_key.clone(),
            sizes: thumbnail_plan.widths.clone(),
            capped: thumbnail_plan.capped.clone(),
        };
        // Thumbnails first, the clip last: a clip object at its key means everything is there.
        for (width, file) in &thumbnail_files {
            let key = config.thumbnail_key(request, &width.to_string());
            let options = UploadOptions {
                content_type: Some("image/png".to_owned()),
                metadata: vec![],
            };
            upload_file(&self.s3, file, &config.destination_bucket, &key, &options).await?;
        }
        let options = UploadOptions {
            content_type: Some("video/mp4".to_owned()),
            metadata: clip_metadata(&fingerprint, &clip, &thumbnail),
        };
        let clip_bytes = upload_file(&self.s3, &clip_path, &config.destination_bucket, &clip_key, &options).await?;
        tracing::info!(clip_key, clip_bytes, "clip and thumbnails stored");
        let made = MadeClip {
            clip,
            thumbnail,
            reused: false,
            origin_bytes,
            clip_bytes,
            cut_time,
            thumbnail_time,
        };
        self.notify_camera_api(request, alias, &made).await?;
        Ok(made)
    }

    async fn notify_camera_api(
        &self,
        request: &ClipRequest,
        alias: &str,
        made: &MadeClip,
    ) -> Result<(), ProcessingError> {
        self.camera_api
            .post_clip(&ClipNotice {
                clip_id: &request.clip_id,
                camera_id: &request.camera_id,
                alias,
                start_timestamp_in_ms: request.start_timestamp_in_ms,
                end_timestamp_in_ms: request.end_timestamp_in_ms,
                clip_url: &made.clip.url,
                thumbnail_url: &made.thumbnail.url,
                thumbnail_sizes: &made.thumbnail.sizes,
            })
            .await
    }

    /// The clip already stored for this very request and these recordings, if any.
    async fn existing_clip(
        &self,
        clip_key: &str,
        fingerprint: &str,
        thumbnail_key: &str,
    ) -> Result<Option<MadeClip>, ProcessingError> {
        let Some(head) = head_object(&self.s3, &self.config.destination_bucket, clip_key).await? else {
            return Ok(None);
        };
        let metadata = head.metadata.unwrap_or_default();
        if metadata.get("request-fingerprint").map(String::as_str) != Some(fingerprint) {
            return Ok(None);
        }
        let Some(stored) = metadata
            .get("result")
            .map(|r| shared::storage::decode_metadata_value(r))
            .and_then(|r| serde_json::from_str::<StoredResult>(&r).ok())
        else {
            return Ok(None);
        };
        Ok(Some(MadeClip {
            clip: ClipLink {
                url: self.config.public_url(clip_key),
                key: clip_key.to_owned(),
                mode: stored.mode,
                mode_reason: stored.mode_reason,
                duration_ms: stored.duration_ms,
                frames: stored.frames,
            },
            thumbnail: ThumbnailLinks {
                url: self.config.public_url(thumbnail_key),
                key: thumbnail_key.to_owned(),
                sizes: stored.sizes,
                capped: stored.capped,
            },
            reused: true,
            origin_bytes: 0,
            clip_bytes: head.content_length.unwrap_or(0).max(0) as u64,
            cut_time: Duration::ZERO,
            thumbnail_time: Duration::ZERO,
        }))
    }
}

/// What a stored clip says about itself (object metadata), so a redelivered request reports
/// the clip as it was made.
#[derive(Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredResult {
    mode: String,
    mode_reason: Option<String>,
    duration_ms: i64,
    frames: u32,
    sizes: Vec<u32>,
    capped: Vec<CappedSize>,
}

fn clip_metadata(fingerprint: &str, clip: &ClipLink, thumbnail: &ThumbnailLinks) -> Vec<(String, String)> {
    let stored = StoredResult {
        mode: clip.mode.clone(),
        mode_reason: clip.mode_reason.clone(),
        duration_ms: clip.duration_ms,
        frames: clip.frames,
        sizes: thumbnail.sizes.clone(),
        capped: thumbnail.capped.clone(),
    };
    vec![
        ("request-fingerprint".to_owned(), fingerprint.to_owned()),
        (
            "result".to_owned(),
            shared::storage::metadata_value(&serde_json::to_string(&stored).expect("serializes")),
        ),
    ]
}

/// Identifies what a clip was made from: the range and the recordings (keys and spans).
fn fingerprint(request: &ClipRequest, coverage: &Coverage) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(format!(
        "{}|{}|{}|{}",
        request.camera_id, request.clip_id, request.start_timestamp_in_ms, request.end_timestamp_in_ms
    ));
    for segment in &coverage.segments {
        hasher.update(format!(
            "|{}|{}|{}|{}",
            segment.recording.key, segment.recording.start_ms, segment.from_ms, segment.to_ms
        ));
    }
    hex::encode(hasher.finalize())
}

fn with_recording(mut err: ProcessingError, key: &str) -> ProcessingError {
    err.reason = format!("recording {key}: {}", err.reason);
    err
}

fn ms(value: i64) -> f64 {
    value as f64 / 1000.0
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The redelivery delay after the `receives`-th failed delivery: `base`, doubled each time,
/// at most 900 s (SQS's longest visibility change that keeps the message in reach).
pub fn backoff_secs(base: i32, receives: i32) -> i32 {
    let exponent = (receives - 1).clamp(0, 10) as u32;
    base.max(1).saturating_mul(2i32.saturating_pow(exponent)).min(900)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request with made-up values, for the fields a test does not look at.
    fn placeholder_request() -> ClipRequest {
        ClipRequest {
            clip_id: String::new(),
            camera_id: String::new(),
            start_timestamp_in_ms: 0,
            end_timestamp_in_ms: 0,
            retry_timestamps: Vec::new(),
            deadline_requeues: 0,
        }
    }

    fn env<'a>(extra: &[(&'a str, &'a str)]) -> EnvReader {
        let mut pairs = vec![
            ("CAM_SERVICES_URL", "http://cams.local"),
            ("CLIP_URL", "https://d111.cloudfront.net/"),
            ("RECORDINGS_URL", "https://recordings.example.com"),
            ("S3_BUCKET_ORIGIN", "origin"),
            ("S3_BUCKET_DESTINATION", "dest"),
            ("AWS_SNS_TOPIC", "arn:aws:sns:us-east-1:000000000000:results"),
            ("AWS_SQS_QUEUE_URL", "http://localhost/000000000000/clips"),
            ("DEAD_LETTER_QUEUE_URL", "http://localhost/000000000000/clips-dlq"),
        ];
        pairs.extend_from_slice(extra);
        EnvReader::from_pairs(pairs)
    }

    #[test]
    fn the_seeds_defaults() {
        let config = Config::from_env(env(&[])).unwrap();
        assert_eq!(config.limits.retry_limit_ms, 15 * 60 * 1000);
        assert_eq!(config.limits.out_of_range_ms, 3 * 86_400 * 1000);
        assert_eq!(config.thumbnail_sizes, [300, 640, 1500, 3000]);
        assert_eq!(config.names.timestamp_format, "%Y%m%dT%H%M%S");
        let old = Config::from_env(env(&[("OLD_FILE_FORMAT", "True")])).unwrap();
        assert!(old.names.old_file_format);
        assert_eq!(old.names.timestamp_format, "%Y%m%dT%H%M");
    }

    #[test]
    fn bad_settings_are_all_named() {
        let err = Config::from_env(env(&[
            ("SQS_TIMEOUT", "901"),
            ("THUMBNAIL_SIZES", "300,0"),
            ("OLD_FILE_FORMAT", "maybe"),
        ]))
        .unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(names, ["OLD_FILE_FORMAT", "SQS_TIMEOUT", "THUMBNAIL_SIZES"]);
        let missing = Config::from_env(EnvReader::from_pairs([])).unwrap_err();
        assert_eq!(missing.problems.len(), 8, "{missing}");
    }

    #[test]
    fn keys_and_links_have_the_seeds_shape() {
        let config = Config::from_env(env(&[])).unwrap();
        let request = ClipRequest {
            clip_id: "1111111111111".into(),
            camera_id: "2222".into(),
            ..placeholder_request()
        };
        assert_eq!(config.clip_key(&request), "clips/2222/1111111111111.mp4");
        assert_eq!(
            config.thumbnail_key(&request, "{size}"),
            "clips/2222/1111111111111{size}.png"
        );
        assert_eq!(
            config.public_url(&config.clip_key(&request)),
            "https://d111.cloudfront.net/clips/2222/1111111111111.mp4"
        );
    }

    #[test]
    fn retry_delays_grow_and_stay_within_sqs_limits() {
        let delays: Vec<_> = (1..=8).map(|n| backoff_secs(10, n)).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 900]);
        assert_eq!(backoff_secs(10, 0), 10);
        assert_eq!(backoff_secs(10, 1_000), 900);
    }

    #[test]
    fn results_carry_filterable_attributes() {
        let result = ClipResult::for_request(&placeholder_request(), CLIP_PENDING).with_reason(CLIP_PENDING, "later");
        let attributes = result.attributes();
        assert!(attributes.contains(&("job", Attribute::Text("clip".into()))));
        assert!(attributes.contains(&("status", Attribute::Text(CLIP_PENDING.into()))));
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["status"], "CLIP_PENDING");
        assert!(json.get("clip").is_none());
    }
}
