//! Clip trimmer: an SQS clip request `{clipId, cameraId, startTimestampInMs, endTimestampInMs,
//! retryTimestamps}` → the camera's recordings, found through the camera API and read from the
//! origin bucket → one MP4 clip of exactly that range plus PNG thumbnails in the destination
//! bucket → the camera API told → a result on the SNS topic.
//!
//! Every request gets exactly one answer per delivery, published on `AWS_SNS_TOPIC` with the
//! message attributes `job=clip` and `status`; the request, the result and what each status
//! means are the contract in [`shared::contracts::clip`].
//!
//! Faults that retrying can fix (camera API down or 5xx, S3 throttling) hand the message back
//! through the batch response, with its visibility extended exponentially (the backoff), and
//! past the redrive limit it lands in the DLQ. A message that is not a request at all is
//! also parked in the DLQ with the reason, besides its invalid result.
//!
//! Re-queueing ("retry-by-requeue") sends a copy and then lets the original finish, so exactly
//! one copy is in flight; if the copy cannot be sent, the original is retried instead. When an
//! invocation's deadline is too close to finish a clip, the request is handed on the same way
//! (at most `MAX_DEADLINE_REQUEUES` times) rather than cut off.
//!
//! How a message is handled, in the order it happens:
//!
//! * [`config`]: the settings, read once at cold start.
//! * [`request`]: the body read as a request (JSON or the Python-dict style) and validated.
//! * [`decide`]: what the request comes to, as pure functions (out of range, pending, not
//!   available, handed on, failed, available) and the backoff.
//! * [`camera_api`]: the camera's alias, the recordings in a range, the notice of a clip.
//! * [`recordings`]: a listed recording's key in the origin bucket and its start.
//! * [`schedule`]: the time rules and how recordings cover a range.
//! * [`make_clip`]: the clip pipeline: fetch, cut, thumbnails, upload, camera API told.
//! * [`replica`]: only the bytes of a recording that a clip needs, in a sparse local file.
//! * [`media`]: a recording's frames and parameters, from ffprobe.
//! * [`cut`]: the smart cut (or full re-encode) of the parts into one clip.
//! * [`thumbnails`]: the first frame as PNGs at the configured widths.
//! * [`answer`]: the step carried out: the result published once, the copy re-queued, the
//!   message handed back.

pub mod answer;
pub mod camera_api;
pub mod config;
pub mod cut;
pub mod decide;
pub mod make_clip;
pub mod media;
pub mod recordings;
pub mod replica;
pub mod request;
pub mod schedule;
pub mod thumbnails;

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use shared::ffmpeg::Deadline;
use shared::ledger::Ledger;
use shared::sqs::{process_batch, Disposition};
use shared::ProcessingError;
use tracing::Instrument;

use crate::camera_api::CameraApi;
use crate::decide::Step;
use crate::request::ClipRequest;

pub use crate::config::Config;
pub use crate::make_clip::MadeClip;

/// What the trimmer holds across invocations: the clients, built once at cold start, and the
/// settings.
pub struct Trimmer {
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// One result per outcome, and one re-queued copy per attempt, when a request arrives twice.
    pub ledger: Ledger,
    pub camera_api: CameraApi,
    pub config: Config,
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
                let result = decide::not_a_request(&body, &err);
                return self.reject_message(&record, result, err, true).await;
            }
        };
        if let Err(err) = request::validate(&request, self.config.max_len_ms) {
            let result = decide::invalid(&request, &err);
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
            let step = self.attempt(&request, sent_ms, deadline).await;
            self.carry_out(step, &record).await
        }
        .instrument(span)
        .await
    }

    /// Finds out what a valid request comes to, making the clip if it can be made: each thing
    /// learnt (the clock, the camera, the recordings, the clip) is judged by [`decide`].
    async fn attempt(&self, request: &ClipRequest, sent_ms: Option<i64>, deadline: Deadline) -> Step {
        let config = &self.config;
        let now = chrono::Utc::now().timestamp_millis();
        if let Some(step) = decide::out_of_range(request, now, config) {
            return step;
        }
        let alias = match self.camera_api.alias(&request.camera_id).await {
            Ok(alias) => alias,
            Err(err) => return decide::for_error(request, err),
        };
        let coverage = match self.find_recordings(&alias, request, now).await {
            Ok(coverage) => coverage,
            Err(err) => return decide::for_error(request, err),
        };
        let range = (request.start_timestamp_in_ms, request.end_timestamp_in_ms);
        if !coverage.is_complete(range, config.gap_tolerance_ms) {
            return decide::not_covered(request, &coverage, sent_ms, now, config);
        }
        if deadline.remaining() < config.min_time_per_clip {
            return decide::hand_on(
                request,
                "too little time left in this invocation to start the clip",
                config,
            );
        }
        // Boxed: the clip-making future is large, and would otherwise sit inline in every
        // future that awaits it.
        match Box::pin(self.make_clip(request, &alias, &coverage, deadline, None)).await {
            Ok(made) => decide::available(request, made.clip, made.thumbnail, &coverage.gaps, config),
            Err(err) if err.code == shared::Code::Timeout => decide::hand_on(request, &err.reason, config),
            Err(err) => decide::for_error(request, err),
        }
    }
}
