//! Rendition worker: SQS batches of upload notices → one H.264/AAC MP4 per source under this
//! deployment's profile (720p, 1080p, … from `job-templates/renditions/`), then a result on the
//! results topic. One crate, deployed once per profile (`RENDITION_PROFILE`).
//!
//! Per message: download the source (streamed to local disk), ffprobe it, plan the output
//! (fit, never upscale, cap fps), transcode under the invocation's deadline, upload under a
//! deterministic key, publish `available`. A source that is not a usable video is answered
//! with `rejected` and the message is done; a fault that retrying can fix hands the message
//! back to the queue. On the message's last delivery (`MAX_RECEIVE_COUNT`, the queue's
//! `maxReceiveCount`) such a fault is answered too: `failed` with its code (a source too long
//! to encode in one invocation: `TIMEOUT`) is published, and the message is still handed back,
//! so it rests in the DLQ for a redrive once the fault is fixed. Nothing ends in a DLQ unannounced.
//!
//! A source longer than `SEGMENTED_ABOVE_SECS` (what one invocation can encode; the template's
//! `SegmentedAboveSeconds`) is not encoded here: the worker starts one execution of the
//! segmented-rendition state machine (`STATE_MACHINE_ARN`) for it and is done with the message.
//! Such a source is not downloaded: ffprobe reads its duration through a presigned URL first
//! (only when that cannot tell is the source downloaded and probed as any other). The
//! execution is named after the source version and profile, so a duplicated notice finds it
//! already started (`ExecutionAlreadyExists`) and starts nothing; the execution publishes the
//! progress and the outcome (see the `segmented-rendition` function).
//!
//! Redelivery is safe: the output key depends only on the source key and the profile, the
//! output is written in full locally before one atomic PutObject/CompleteMultipartUpload, and
//! an output already made from the same source version (its ETag in the object's metadata) is
//! reused instead of transcoded again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use shared::config::{ConfigError, EnvReader};
use shared::contracts::segmented::{ExecutionInput, SegmentedJob};
use shared::contracts::{
    Compute, Job, ObjectRef, PipelineResult, RenditionOutput, ResultStatus, UploadNotice, CONTRACT_VERSION,
};
use shared::ffmpeg::{Deadline, Supervised};
use shared::ledger::{Ledger, OutcomeKey};
use shared::probe::{probe_source, MediaInfo, Unreadable};
use shared::profiles::RenditionProfile;
use shared::renditions::{plan_note, probe_output, publish_rendition_result, OutputDescription};
use shared::s3_event::MAX_KEY_BYTES;
use shared::sqs::{deliveries, park_in_dead_letter_queue, parse_body, process_batch, Disposition};
use shared::storage::{
    decode_metadata_value, download_to_file, head_object, metadata_value, presigned_get_url, upload_file, work_dir,
    UploadOptions,
};
use shared::{Code, ErrorKind, ProcessingError};
use tracing::Instrument;

/// How long the URL the worker probes a source through stays valid (one ffprobe run).
const REMOTE_PROBE_URL_TTL: Duration = Duration::from_secs(900);

#[derive(Debug, Clone)]
pub struct Config {
    /// `RENDITION_PROFILE`: a profile of `job-templates/renditions/` (480p, 720p, 1080p).
    pub profile: RenditionProfile,
    /// `OUTPUT_BUCKET`
    pub output_bucket: String,
    /// `OUTPUT_PREFIX` (default `renditions/`)
    pub output_prefix: String,
    /// `RESULTS_TOPIC_ARN`
    pub results_topic_arn: String,
    /// `DEAD_LETTER_QUEUE_URL`: malformed messages are parked there at once, with the reason.
    pub dead_letter_queue_url: String,
    /// `FFMPEG_PATH` / `FFPROBE_PATH` (default: found on `PATH`; a Lambda layer puts them in /opt/bin)
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// `WORK_DIR` (default: the system temp dir, i.e. Lambda's /tmp)
    pub work_dir: PathBuf,
    /// `DEADLINE_MARGIN_SECS` (default 20): time kept after ffmpeg for upload and publish.
    pub deadline_margin: Duration,
    /// `MIN_SECS_PER_MESSAGE` (default 30): a message is not started with less time left.
    pub min_time_per_message: Duration,
    /// `MAX_RECEIVE_COUNT` (default 3): the queue's `maxReceiveCount`. A retryable fault on
    /// this delivery is published as `failed` before the message moves to the DLQ.
    pub max_receive_count: u32,
    /// `PRICE_PER_GB_SECOND` (USD; default 0.0000133334, Lambda's arm64 list price): what each
    /// result's `compute` is priced at.
    pub price_per_gb_second: f64,
    /// `STATE_MACHINE_ARN`: the segmented-rendition state machine. Empty: every source is
    /// encoded here in one pass, however long.
    pub state_machine_arn: Option<String>,
    /// `SEGMENTED_ABOVE_SECS` (default 300): sources longer than this are rendered in segments.
    pub segmented_above_secs: f64,
    /// `SCRATCH_PREFIX` (default `scratch/renditions/`): where an execution's parts go in the
    /// output bucket, one folder per execution.
    pub scratch_prefix: String,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let profile_name: String = env.required("RENDITION_PROFILE");
        let profile = RenditionProfile::built_in(&profile_name);
        if !profile_name.is_empty() {
            env.check(
                profile.is_some(),
                "RENDITION_PROFILE",
                &format!(
                    "names no profile ({profile_name:?}; known: {})",
                    RenditionProfile::built_in_names().join(", ")
                ),
            );
        }
        let config = Config {
            profile: profile.unwrap_or_else(|| RenditionProfile::built_in("720p").expect("built in")),
            output_bucket: env.required("OUTPUT_BUCKET"),
            output_prefix: env.optional_or("OUTPUT_PREFIX", "renditions/".to_owned()),
            results_topic_arn: env.required("RESULTS_TOPIC_ARN"),
            dead_letter_queue_url: env.required("DEAD_LETTER_QUEUE_URL"),
            ffmpeg: env.optional_or("FFMPEG_PATH", PathBuf::from("ffmpeg")),
            ffprobe: env.optional_or("FFPROBE_PATH", PathBuf::from("ffprobe")),
            work_dir: env.optional_or("WORK_DIR", std::env::temp_dir()),
            deadline_margin: Duration::from_secs(env.optional_or("DEADLINE_MARGIN_SECS", 20)),
            min_time_per_message: Duration::from_secs(env.optional_or("MIN_SECS_PER_MESSAGE", 30)),
            max_receive_count: env.optional_or("MAX_RECEIVE_COUNT", 3),
            price_per_gb_second: env.optional_or("PRICE_PER_GB_SECOND", 0.0000133334),
            state_machine_arn: env
                .optional_or("STATE_MACHINE_ARN", String::new())
                .split_whitespace()
                .next()
                .map(str::to_owned),
            segmented_above_secs: env.optional_or("SEGMENTED_ABOVE_SECS", 300.0),
            scratch_prefix: env.optional_or("SCRATCH_PREFIX", "scratch/renditions/".to_owned()),
        };
        env.finish()?;
        Ok(config)
    }

    /// `renditions/<source key>/<profile>.mp4`: depends only on the source key and profile, so
    /// a redelivered message overwrites the same object, and two sources never collide. A
    /// source key so long that this would pass S3's 1,024-byte limit is rejected by name rather
    /// than failing the upload on every retry.
    pub fn output_key(&self, source_key: &str) -> Result<String, ProcessingError> {
        let key = format!("{}{}/{}.mp4", self.output_prefix, source_key, self.profile.name);
        if key.len() > MAX_KEY_BYTES {
            return Err(ProcessingError::rejected(
                Code::KeyTooLong,
                format!("the output key would be {} bytes; S3 allows {MAX_KEY_BYTES}", key.len()),
            ));
        }
        Ok(key)
    }
}

pub struct Worker {
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sfn: aws_sdk_sfn::Client,
    /// One result per outcome when a notice arrives more than once.
    pub ledger: Ledger,
    pub config: Config,
}

impl Worker {
    #[tracing::instrument(skip_all, fields(request_id = %event.context.request_id, profile = %self.config.profile.name))]
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, ProcessingError> {
        let deadline = Deadline::from_epoch_millis(event.context.deadline, self.config.deadline_margin);
        let memory_mb = u32::try_from(event.context.env_config.memory).unwrap_or(0);
        let response = process_batch(event.payload, deadline, self.config.min_time_per_message, |record| {
            self.handle_message(record, deadline, memory_mb)
        })
        .await;
        Ok(response)
    }

    async fn handle_message(&self, record: SqsMessage, deadline: Deadline, memory_mb: u32) -> Disposition {
        let started = Instant::now();
        let notice: UploadNotice = match parse_body(&record) {
            Ok(notice) => notice,
            Err(err) => {
                return park_in_dead_letter_queue(&self.sqs, &self.config.dead_letter_queue_url, &record, &err).await
            }
        };
        let deliveries = deliveries(&record);
        let span = tracing::info_span!("source", bucket = %notice.bucket, key = %notice.key, deliveries);
        let delivery = Delivery {
            message_id: record.message_id.unwrap_or_default(),
            deliveries,
            started,
            memory_mb,
        };
        self.render_and_report(notice, &delivery, deadline)
            .instrument(span)
            .await
    }

    async fn render_and_report(&self, notice: UploadNotice, delivery: &Delivery, deadline: Deadline) -> Disposition {
        let source = ObjectRef {
            bucket: notice.bucket.clone(),
            key: notice.key.clone(),
            etag: notice.etag.clone(),
        };
        let profile = Some(self.config.profile.name.clone());
        let mut hand_back_after_publishing = false;
        let mut result = match self.render(&notice, deadline).await {
            Ok(Rendered::Segmented { execution, started }) => {
                // The execution answers: progress while it runs, then the outcome.
                tracing::info!(
                    execution,
                    started,
                    "rendition handed to the segmented-rendition state machine"
                );
                return Disposition::Done;
            }
            Ok(Rendered::Here(output)) => PipelineResult {
                version: CONTRACT_VERSION,
                job: Job::Rendition,
                status: ResultStatus::Available,
                source,
                profile,
                output: Some(output),
                reason: None,
                mediaconvert: None,
                compute: None,
                progress: None,
            },
            Err(err) if err.kind == ErrorKind::Retryable => {
                match answer_to_fault(err, delivery.deliveries, self.config.max_receive_count) {
                    FaultAnswer::HandBack(err) => {
                        tracing::warn!(code = %err.code(), reason = %err.reason, "retryable fault; message handed back");
                        return Disposition::Retry;
                    }
                    FaultAnswer::GiveUp(err) => {
                        tracing::error!(code = %err.code(), reason = %err.reason, "last delivery failed; answered as failed, message left for the DLQ");
                        hand_back_after_publishing = true;
                        PipelineResult::from_error(Job::Rendition, source, profile, &err)
                    }
                }
            }
            Err(err) => {
                tracing::warn!(code = %err.code(), reason = %err.reason, kind = %err.kind, "source not rendered");
                PipelineResult::from_error(Job::Rendition, source, profile, &err)
            }
        };
        result.compute = Some(Compute::new(
            delivery.started.elapsed(),
            delivery.memory_mb,
            self.config.price_per_gb_second,
        ));
        let publication = publish_rendition_result(
            &self.ledger,
            &self.sns,
            &self.config.results_topic_arn,
            &self.config.profile.name,
            notice.source_version(),
            &delivery.message_id,
            &result,
        )
        .await;
        match publication {
            Ok(publication) => {
                tracing::info!(
                    status = result.status.as_str(),
                    publication = publication.as_str(),
                    "result answered"
                );
                if hand_back_after_publishing {
                    Disposition::Retry
                } else {
                    Disposition::Done
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "could not publish the result; message handed back");
                Disposition::Retry
            }
        }
    }

    /// The source as ffprobe reads it through a presigned URL (the index, not the media), if it
    /// has a video stream it can read; `None` leaves the decision to the download.
    async fn remote_probe(&self, notice: &UploadNotice, deadline: Deadline) -> Option<MediaInfo> {
        let url = presigned_get_url(&self.s3, &notice.bucket, &notice.key, REMOTE_PROBE_URL_TTL)
            .await
            .ok()?;
        match probe_source(&self.config.ffprobe, url.as_ref(), deadline, Unreadable::CORRUPT_SOURCE).await {
            Ok(info) if info.video.is_some() => Some(info),
            Ok(_) => None,
            Err(err) => {
                tracing::info!(code = %err.code(), reason = %err.reason, "no probe through the URL; the download decides");
                None
            }
        }
    }

    /// Produces (or finds) the rendition of one source, or hands a long one to the state machine.
    pub async fn render(&self, notice: &UploadNotice, deadline: Deadline) -> Result<Rendered, ProcessingError> {
        let config = &self.config;
        let output_key = config.output_key(&notice.key)?;
        if let Some(existing) = self.existing_output(notice, &output_key).await? {
            tracing::info!(output_key, "rendition of this source version already exists; reused");
            return Ok(Rendered::Here(existing));
        }

        // A long source goes to the state machine without being downloaded here: ffprobe reads
        // its index through a presigned URL. When that cannot tell (an empty or unreadable
        // object, say), the download below does, and names what is wrong.
        // A short source keeps this probe: the downloaded file is the same object.
        let mut probed = None;
        if let Some(state_machine_arn) = config.state_machine_arn.as_deref() {
            probed = self.remote_probe(notice, deadline).await;
            if let Some(duration) = probed.as_ref().and_then(|info| info.duration_secs) {
                if duration > config.segmented_above_secs {
                    tracing::info!(duration, "long source: handed to the state machine without a download");
                    let execution = execution_name(&config.profile.name, notice);
                    let job = self.segmented_job(notice, output_key, &execution);
                    return self.start_segmented(state_machine_arn, execution, &job).await;
                }
            }
        }

        let workspace = work_dir(&config.work_dir, "rendition-")?;
        // Local names are ours; the user's key never reaches ffmpeg's command line.
        let source_path = workspace.path().join("source");
        let output_path = workspace.path().join("output.mp4");

        let downloaded = download_to_file(&self.s3, &notice.bucket, &notice.key, &source_path).await?;
        tracing::info!(bytes = downloaded, "source downloaded");
        if downloaded == 0 {
            return Err(ProcessingError::rejected(
                Code::EmptyObject,
                "the source object is empty (0 bytes)",
            ));
        }
        let info = match probed {
            Some(info) => info,
            None => probe_source(&config.ffprobe, &source_path, deadline, Unreadable::CORRUPT_FILE).await?,
        };
        info.require_video()?;
        let plan = config.profile.plan(&info).expect("a video stream was required above");
        let duration = info.duration_secs.unwrap_or(0.0);
        if let Some(state_machine_arn) = config
            .state_machine_arn
            .as_deref()
            .filter(|_| duration > config.segmented_above_secs)
        {
            let execution = execution_name(&config.profile.name, notice);
            let job = self.segmented_job(notice, output_key, &execution);
            return self.start_segmented(state_machine_arn, execution, &job).await;
        }
        tracing::info!(width = plan.width, height = plan.height, upscale_avoided = plan.upscale_avoided, fps_cap = ?plan.fps_cap, "transcoding");

        let mut last_logged = -1i64;
        Supervised::new(&config.ffmpeg, deadline)
            .args(config.profile.ffmpeg_args(&plan, &source_path, &output_path))
            .on_progress(|progress| {
                if duration > 0.0 {
                    let percent = (progress.out_time.as_secs_f64() / duration * 100.0).min(100.0) as i64;
                    if percent / 10 > last_logged / 10 || progress.done {
                        last_logged = percent;
                        tracing::info!(percent, speed = ?progress.speed, "transcode progress");
                    }
                }
            })
            .run()
            .await
            .map_err(|e| e.into_processing_error(Code::TranscodeFailed))?;

        let (width, height, duration_secs) = probe_output(&config.ffprobe, &output_path, deadline).await?;
        let note = plan_note(&plan, &info, &config.profile);
        let description = OutputDescription {
            source_bucket: &notice.bucket,
            source_key: &notice.key,
            source_etag: notice.etag.as_deref(),
            profile: &config.profile.name,
            width,
            height,
            duration_secs,
            upscale_avoided: plan.upscale_avoided,
            note: note.as_deref(),
        };
        let options = UploadOptions {
            content_type: Some("video/mp4".to_owned()),
            metadata: description.metadata(),
        };
        let bytes = upload_file(&self.s3, &output_path, &config.output_bucket, &output_key, &options).await?;
        tracing::info!(output_key, bytes, width, height, duration_secs, "rendition uploaded");
        Ok(Rendered::Here(RenditionOutput {
            bucket: config.output_bucket.clone(),
            key: output_key,
            width,
            height,
            duration_secs,
            bytes,
            upscale_avoided: plan.upscale_avoided,
            note,
        }))
    }

    fn segmented_job(&self, notice: &UploadNotice, output_key: String, execution: &str) -> SegmentedJob {
        SegmentedJob {
            version: CONTRACT_VERSION,
            source: ObjectRef {
                bucket: notice.bucket.clone(),
                key: notice.key.clone(),
                etag: notice.etag.clone(),
            },
            source_version: notice.source_version().to_owned(),
            profile: self.config.profile.name.clone(),
            output_bucket: self.config.output_bucket.clone(),
            output_key,
            scratch_prefix: format!("{}{execution}/", self.config.scratch_prefix),
        }
    }

    /// Starts the execution for `job`, named after its source version and profile: a second
    /// start of the same one (a duplicated notice, a redelivery) starts nothing.
    async fn start_segmented(
        &self,
        state_machine_arn: &str,
        name: String,
        job: &SegmentedJob,
    ) -> Result<Rendered, ProcessingError> {
        let input = serde_json::to_string(&ExecutionInput { job: job.clone() })
            .map_err(|e| ProcessingError::failed(Code::SerializeFailed, e.to_string()))?;
        let started = self
            .sfn
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(&name)
            .input(input)
            .send()
            .await;
        match started {
            Ok(_) => Ok(Rendered::Segmented {
                execution: name,
                started: true,
            }),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_execution_already_exists()) => {
                Ok(Rendered::Segmented {
                    execution: name,
                    started: false,
                })
            }
            Err(err) => Err(ProcessingError::from_sdk("Step Functions StartExecution", err)),
        }
    }

    /// The output already made from this very source version, if any.
    async fn existing_output(
        &self,
        notice: &UploadNotice,
        output_key: &str,
    ) -> Result<Option<RenditionOutput>, ProcessingError> {
        let Some(etag) = &notice.etag else {
            return Ok(None);
        };
        let Some(head) = head_object(&self.s3, &self.config.output_bucket, output_key).await? else {
            return Ok(None);
        };
        let metadata = head.metadata.unwrap_or_default();
        let get = |name: &str| metadata.get(name).map(String::as_str);
        if get("source-etag") != Some(metadata_value(etag).as_str())
            || get("profile") != Some(&self.config.profile.name)
        {
            return Ok(None);
        }
        let (Some(width), Some(height), Some(duration_secs)) = (
            get("width").and_then(|w| w.parse().ok()),
            get("height").and_then(|h| h.parse().ok()),
            get("duration-secs").and_then(|d| d.parse().ok()),
        ) else {
            return Ok(None);
        };
        let upscale_avoided = get("upscale-avoided") == Some("true");
        Ok(Some(RenditionOutput {
            bucket: self.config.output_bucket.clone(),
            key: output_key.to_owned(),
            width,
            height,
            duration_secs,
            bytes: head.content_length.unwrap_or(0).max(0) as u64,
            upscale_avoided,
            // The note written with the object, so a reused output is reported as it was made.
            note: get("note").map(decode_metadata_value),
        }))
    }
}

/// What became of a source.
pub enum Rendered {
    /// Rendered (or found rendered) by this worker.
    Here(RenditionOutput),
    /// Too long for one invocation: handed to the segmented-rendition state machine
    /// (`started: false` when this source version's execution already existed).
    Segmented { execution: String, started: bool },
}

/// The execution's name: the profile and a digest of the source's identity (bucket, key,
/// version), within Step Functions' 80 characters of `[A-Za-z0-9-_]`.
pub fn execution_name(profile: &str, notice: &UploadNotice) -> String {
    let digest = OutcomeKey::new([profile, &notice.bucket, &notice.key, notice.source_version()]);
    format!("{profile}-{}", &digest.hash()[..40])
}

/// One delivery of a message, as the invocation received it.
struct Delivery {
    message_id: String,
    /// SQS's count of deliveries, this one included.
    deliveries: u32,
    /// When this invocation started on the message: its result's compute runs from here.
    started: Instant,
    /// The function's memory (MB), what Lambda bills each millisecond at.
    memory_mb: u32,
}

/// What a retryable fault becomes on this delivery.
#[derive(Debug)]
enum FaultAnswer {
    /// Retrying may fix it and SQS will deliver the message again.
    HandBack(ProcessingError),
    /// The last delivery: the fault is published as `failed` (same code, the reason says how
    /// many deliveries were tried), and the message then moves to the DLQ, kept for a redrive.
    GiveUp(ProcessingError),
}

fn answer_to_fault(err: ProcessingError, deliveries: u32, max_receive_count: u32) -> FaultAnswer {
    if deliveries < max_receive_count {
        return FaultAnswer::HandBack(err);
    }
    FaultAnswer::GiveUp(err.given_up_after(deliveries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(extra: &[(&'a str, &'a str)]) -> EnvReader {
        let mut pairs = vec![
            ("RENDITION_PROFILE", "720p"),
            ("OUTPUT_BUCKET", "out"),
            ("RESULTS_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:results"),
            ("DEAD_LETTER_QUEUE_URL", "http://localhost/000000000000/dlq"),
        ];
        pairs.extend_from_slice(extra);
        EnvReader::from_pairs(pairs)
    }

    #[test]
    fn output_keys_are_deterministic_per_source_and_profile() {
        let config = Config::from_env(env(&[])).unwrap();
        let key = |source: &str| config.output_key(source).unwrap();
        assert_eq!(
            key("uploads/my demo+clip.mov"),
            "renditions/uploads/my demo+clip.mov/720p.mp4"
        );
        assert_eq!(key("a.mp4"), key("a.mp4"));
        assert_ne!(key("a.mp4"), key("a.mov"));
    }

    #[test]
    fn a_source_key_too_long_for_its_output_key_is_a_named_rejection() {
        let config = Config::from_env(env(&[])).unwrap();
        let longest_fitting = "k".repeat(1024 - "renditions//720p.mp4".len());
        assert!(config.output_key(&longest_fitting).is_ok());
        let err = config.output_key(&format!("{longest_fitting}k")).unwrap_err();
        assert_eq!((err.code(), err.kind), (Code::KeyTooLong, ErrorKind::Rejected));
    }

    #[test]
    fn an_unknown_profile_is_named_with_the_known_ones() {
        let err = Config::from_env(env(&[("RENDITION_PROFILE", "4k")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RENDITION_PROFILE names no profile (\"4k\"; known: 480p, 720p, 1080p)"),
            "{err}"
        );
    }

    #[test]
    fn a_fault_is_handed_back_until_the_last_delivery_then_answered_as_failed() {
        let timeout = || ProcessingError::retryable(Code::Timeout, "ffmpeg ran past the deadline");
        assert!(matches!(answer_to_fault(timeout(), 1, 3), FaultAnswer::HandBack(_)));
        assert!(matches!(answer_to_fault(timeout(), 2, 3), FaultAnswer::HandBack(_)));
        for deliveries in [3, 4] {
            let FaultAnswer::GiveUp(err) = answer_to_fault(timeout(), deliveries, 3) else {
                panic!("delivery {deliveries} of 3 is past the last");
            };
            assert_eq!((err.code(), err.kind), (Code::Timeout, ErrorKind::Failed));
            assert!(
                err.reason
                    .starts_with(&format!("gave up after {deliveries} deliveries")),
                "{}",
                err.reason
            );
            assert!(err.reason.ends_with("ffmpeg ran past the deadline"), "{}", err.reason);
        }
    }

    #[test]
    fn max_receive_count_defaults_to_the_templates() {
        assert_eq!(Config::from_env(env(&[])).unwrap().max_receive_count, 3);
        let config = Config::from_env(env(&[("MAX_RECEIVE_COUNT", "5")])).unwrap();
        assert_eq!(config.max_receive_count, 5);
        assert_eq!(config.price_per_gb_second, 0.0000133334, "arm64's list price");
    }

    fn notice(key: &str, sequencer: &str) -> UploadNotice {
        serde_json::from_value(serde_json::json!({
            "version": 1, "bucket": "src", "key": key, "size": 1, "sequencer": sequencer,
            "eventTime": "2026-12-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn an_execution_is_named_after_the_source_version_and_profile() {
        let name = execution_name("1080p", &notice("uploads/a long talk (final).mp4", "0065A"));
        assert!(name.starts_with("1080p-") && name.len() <= 80, "{name}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{name}"
        );
        assert_eq!(
            name,
            execution_name("1080p", &notice("uploads/a long talk (final).mp4", "0065A"))
        );
        assert_ne!(
            name,
            execution_name("720p", &notice("uploads/a long talk (final).mp4", "0065A"))
        );
        assert_ne!(
            name,
            execution_name("1080p", &notice("uploads/a long talk (final).mp4", "0065B"))
        );
    }

    #[test]
    fn sources_are_segmented_only_with_a_state_machine() {
        let config = Config::from_env(env(&[])).unwrap();
        assert_eq!((config.state_machine_arn, config.segmented_above_secs), (None, 300.0));
        let arn = "arn:aws:states:us-east-1:000000000000:stateMachine:segmented";
        let config = Config::from_env(env(&[("STATE_MACHINE_ARN", arn), ("SEGMENTED_ABOVE_SECS", "90")])).unwrap();
        assert_eq!(
            (config.state_machine_arn.as_deref(), config.segmented_above_secs),
            (Some(arn), 90.0)
        );
    }

    #[test]
    fn every_missing_variable_is_named() {
        let err = Config::from_env(EnvReader::from_pairs([])).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            names,
            [
                "RENDITION_PROFILE",
                "OUTPUT_BUCKET",
                "RESULTS_TOPIC_ARN",
                "DEAD_LETTER_QUEUE_URL"
            ]
        );
    }
}
