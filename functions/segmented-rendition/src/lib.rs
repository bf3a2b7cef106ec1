//! Rendition segments: the tasks of a segmented rendition, run by its Step Functions state
//! machine (`SegmentedRenditionStateMachine`) for a source too long for one invocation of a
//! rendition worker, which starts the execution. One function, four tasks
//! ([`SegmentTask`]):
//!
//! * `plan`: probe the source through a presigned URL (ffprobe reads the index, not the
//!   media), fit it to the profile as a single pass would, cut the output into segments of
//!   whole keyframe intervals and its audio into longer segments of whole AAC frames
//!   ([`shared::segments`]), and list the parts (video segments, then audio segments);
//! * `encode`: one part, read by byte ranges of the presigned source (accurate input seeking)
//!   and written under the job's scratch prefix. A video segment is encoded to MPEG-TS at the
//!   single pass's frame times and keyframes; an audio segment to AAC frames, of which only its
//!   own are kept. Then a progress result (`in_progress`, parts done / total) is published;
//! * `join`: append the video parts and the audio parts, mux them by stream copy
//!   (`+faststart`), write the rendition in one upload at its final key (no partial object
//!   ever appears there), publish `available` with the compute of every invocation, and
//!   delete the scratch parts;
//! * `answerFailure`: every state's `Catch` ends here: publish `failed` (or `rejected`) with the
//!   task's code and reason, delete the scratch parts.
//!
//! It is also invoked, asynchronously, by an EventBridge rule with Step Functions' status event
//! of every execution that ended other than in success. An execution that was stopped
//! (`ABORTED`), ran out of time (`TIMED_OUT`) or failed without reaching its `RenditionFailed`
//! state (its `answerFailure` gave up) is answered the same way from the job in the event's
//! input; one that reached `RenditionFailed` has answered already ([`failure_from_execution_end`]).
//!
//! Errors reach Step Functions with the error name `retryable`, `rejected` or `failed` (what
//! the state machine's `Retry` matches on) and the message `CODE: reason` (what
//! `answerFailure` publishes).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use shared::config::{ConfigError, EnvReader};
use shared::contracts::segmented::{
    ExecutionInput, ExecutionStatusChange, Part, PartDone, PlannedRendition, SegmentTask, SegmentedInvocation,
    SegmentedJob, StatesError, ANSWERED_FAILURE, MAP_RUN_FAILED,
};
use shared::contracts::{
    Compute, Job, ObjectRef, PipelineResult, Progress, RenditionOutput, ResultStatus, CONTRACT_VERSION,
};
use shared::ffmpeg::{Deadline, RunError, Supervised};
use shared::ledger::Ledger;
use shared::probe::{probe_source, AudioStream, Unreadable};
use shared::profiles::RenditionProfile;
use shared::publish::publish_json;
use shared::renditions::{plan_note, probe_output, publish_rendition_result, OutputDescription};
use shared::segments::{
    audio_segment_args, audio_segments, join_args, keep_audio_frames, segment_command, AudioSegment, FrameRate,
    SegmentPlan, DEFAULT_AUDIO_SEGMENT_SECS, DEFAULT_LEAD_IN_SECS, DEFAULT_LEAD_OUT_SECS, DEFAULT_SEGMENT_SECS,
};
use shared::storage::{download_to_file, local_io, presigned_get_url, upload_file, work_dir, UploadOptions};
use shared::{Code, ErrorKind, ProcessingError};

#[derive(Debug, Clone)]
pub struct Config {
    /// `RESULTS_TOPIC_ARN`
    pub results_topic_arn: String,
    /// `FFMPEG_PATH` / `FFPROBE_PATH` (default: found on `PATH`; the layer puts them in /opt/bin)
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// `WORK_DIR` (default: the system temp dir, i.e. Lambda's /tmp)
    pub work_dir: PathBuf,
    /// `DEADLINE_MARGIN_SECS` (default 15): time kept after ffmpeg for the upload.
    pub deadline_margin: Duration,
    /// `SEGMENT_SECONDS` (default [`DEFAULT_SEGMENT_SECS`]): the output time one segment
    /// encodes, rounded to whole keyframe intervals of the profile.
    pub segment_seconds: f64,
    /// `AUDIO_SEGMENT_SECONDS` (default [`DEFAULT_AUDIO_SEGMENT_SECS`]): the audio one audio
    /// segment encodes, rounded to whole AAC frames.
    pub audio_segment_seconds: f64,
    /// `SEGMENT_LEAD_IN_SECS` (default [`DEFAULT_LEAD_IN_SECS`]): output time encoded before
    /// each segment and dropped, so that rate control has settled at the join (0: none).
    pub lead_in_secs: f64,
    /// `SEGMENT_LEAD_OUT_SECS` (default [`DEFAULT_LEAD_OUT_SECS`]): output time encoded after
    /// each segment and dropped, so that its last frames are coded as in a single pass (0: none).
    pub lead_out_secs: f64,
    /// `PRICE_PER_GB_SECOND` (USD; default 0.0000133334, Lambda's arm64 list price).
    pub price_per_gb_second: f64,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let config = Config {
            results_topic_arn: env.required("RESULTS_TOPIC_ARN"),
            ffmpeg: env.optional_or("FFMPEG_PATH", PathBuf::from("ffmpeg")),
            ffprobe: env.optional_or("FFPROBE_PATH", PathBuf::from("ffprobe")),
            work_dir: env.optional_or("WORK_DIR", std::env::temp_dir()),
            deadline_margin: Duration::from_secs(env.optional_or("DEADLINE_MARGIN_SECS", 15)),
            segment_seconds: env.optional_or("SEGMENT_SECONDS", DEFAULT_SEGMENT_SECS),
            audio_segment_seconds: env.optional_or("AUDIO_SEGMENT_SECONDS", DEFAULT_AUDIO_SEGMENT_SECS),
            lead_in_secs: env.optional_or("SEGMENT_LEAD_IN_SECS", DEFAULT_LEAD_IN_SECS),
            lead_out_secs: env.optional_or("SEGMENT_LEAD_OUT_SECS", DEFAULT_LEAD_OUT_SECS),
            price_per_gb_second: env.optional_or("PRICE_PER_GB_SECOND", 0.0000133334),
        };
        env.check(
            config.segment_seconds >= 1.0,
            "SEGMENT_SECONDS",
            "must be at least 1 (seconds of output per segment)",
        );
        env.check(
            config.audio_segment_seconds >= 10.0,
            "AUDIO_SEGMENT_SECONDS",
            "must be at least 10 (seconds of audio per audio segment)",
        );
        env.check(
            (0.0..=10.0).contains(&config.lead_in_secs),
            "SEGMENT_LEAD_IN_SECS",
            "must be between 0 and 10 (seconds encoded before a segment and dropped)",
        );
        env.check(
            (0.0..=10.0).contains(&config.lead_out_secs),
            "SEGMENT_LEAD_OUT_SECS",
            "must be between 0 and 10 (seconds encoded after a segment and dropped)",
        );
        env.finish()?;
        Ok(config)
    }
}

pub struct SegmentTasks {
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    /// Only to read a failed part's error from its Map Run (`answerFailure`).
    pub sfn: aws_sdk_sfn::Client,
    /// One `available` or `failed` result per outcome, shared with the rendition workers.
    pub ledger: Ledger,
    pub config: Config,
}

/// How long the presigned source URL of a task stays valid: longer than any invocation.
const SOURCE_URL_TTL: Duration = Duration::from_secs(3600);

/// An error as Step Functions sees it: the name its `Retry` and `Catch` match on (the kind), and
/// `CODE: reason` as the message.
#[derive(Debug)]
pub struct TaskError(pub ProcessingError);

impl From<TaskError> for Diagnostic {
    fn from(TaskError(err): TaskError) -> Self {
        Diagnostic {
            error_type: err.kind.to_string(),
            error_message: format!("{}: {}", err.code(), err.reason),
        }
    }
}

impl SegmentTasks {
    #[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, TaskError> {
        let LambdaEvent { payload, context } = event;
        let answer = match invocation(payload) {
            Err(err) => Err(err),
            Ok(SegmentedInvocation::Task(task)) => self.run_task(task, &context).await,
            Ok(SegmentedInvocation::ExecutionEnded(ended)) => {
                let delivery = ended.id.as_deref().unwrap_or(&context.request_id);
                self.answer_execution_end(&ended.detail, delivery).await
            }
        };
        answer.map_err(|err| {
            tracing::warn!(code = %err.code(), kind = %err.kind, reason = %err.reason, "task failed");
            TaskError(err)
        })
    }

    async fn run_task(&self, task: SegmentTask, context: &lambda_runtime::Context) -> Result<Value, ProcessingError> {
        let started = Instant::now();
        let deadline = Deadline::from_epoch_millis(context.deadline, self.config.deadline_margin);
        let memory_mb = u32::try_from(context.env_config.memory).unwrap_or(0);
        let request_id = context.request_id.as_str();
        match task {
            SegmentTask::Plan { job } => self.plan(&job, deadline, started).await.map(|plan| json!(plan)),
            SegmentTask::Encode { job, rendition, part } => self
                .encode(&job, &rendition, &part, deadline, started)
                .await
                .map(|done| json!(done)),
            SegmentTask::Join {
                job,
                rendition,
                parts_done,
            } => {
                let invocation = Invocation {
                    request_id,
                    started,
                    memory_mb,
                };
                self.join(&job, &rendition, &parts_done, deadline, &invocation)
                    .await
                    .map(|output| json!({ "output": output }))
            }
            SegmentTask::AnswerFailure {
                job,
                error,
                execution_arn,
            } => {
                let error = match execution_arn.as_deref() {
                    Some(execution) if error.error == MAP_RUN_FAILED => {
                        self.failed_part_error(execution).await?.unwrap_or(error)
                    }
                    _ => error,
                };
                let err = failure_from_states_error(&error);
                self.publish_failure(&job, &err, request_id)
                    .await
                    .map(|code| json!({ "answered": code }))
            }
        }
    }

    /// Probes the source and cuts its output into parts.
    #[tracing::instrument(skip_all, fields(key = %job.source.key, profile = %job.profile))]
    async fn plan(
        &self,
        job: &SegmentedJob,
        deadline: Deadline,
        started: Instant,
    ) -> Result<PlannedRendition, ProcessingError> {
        let profile = profile(&job.profile)?;
        let url = self.presigned_source(&job.source).await?;
        let info = probe_source(&self.config.ffprobe, url.as_ref(), deadline, Unreadable::CORRUPT_SOURCE).await?;
        let video = info.require_video()?;
        let picture = profile.plan(&info).expect("a video stream was required above");
        let fps = picture.fps_cap.or(video.fps).unwrap_or(0.0);
        let rate = FrameRate::from_fps(fps).ok_or_else(|| {
            ProcessingError::failed(
                Code::SegmentedRenditionFailed,
                format!("the source's frame rate ({fps}) is unknown, so it cannot be cut into segments"),
            )
        })?;
        let duration = info.duration_secs.unwrap_or(0.0);
        let segments = SegmentPlan::new(
            duration,
            rate,
            profile.video.keyframe_interval_secs,
            self.config.segment_seconds,
            self.config.lead_in_secs,
            self.config.lead_out_secs,
        );
        let mut parts = video_parts(&segments);
        let audio_segments = info
            .audio
            .as_ref()
            .map(|audio| self.audio_segments(&profile, audio))
            .unwrap_or_default();
        tracing::info!(
            duration,
            rate = %rate.ffmpeg(),
            segments = segments.segments.len(),
            audio_segments = audio_segments.len(),
            "planned"
        );
        parts.extend(audio_segments.into_iter().map(|segment| Part::Audio { segment }));
        let planned = PlannedRendition {
            note: plan_note(&picture, &info, &profile),
            picture,
            source_duration_secs: duration,
            segments,
            parts,
            billed_ms: billed_ms(started),
        };
        fits_in_one_execution(job, &planned, self.config.segment_seconds)?;
        Ok(planned)
    }

    /// The audio's segments: cut to the sample where the source allows it, else the whole
    /// audio as one (encoded once), with the reason in the log.
    fn audio_segments(&self, profile: &RenditionProfile, audio: &AudioStream) -> Vec<AudioSegment> {
        audio_segments(
            profile,
            audio,
            self.config.audio_segment_seconds,
            self.config.lead_in_secs,
            self.config.lead_out_secs,
        )
        .unwrap_or_else(|why| {
            tracing::info!(why, "the audio is encoded once, not in segments");
            vec![AudioSegment::whole()]
        })
    }

    /// Encodes one part to the job's scratch prefix, then publishes the progress.
    #[tracing::instrument(skip_all, fields(key = %job.source.key, profile = %job.profile, part = %part.file_name()))]
    async fn encode(
        &self,
        job: &SegmentedJob,
        rendition: &PlannedRendition,
        part: &Part,
        deadline: Deadline,
        started: Instant,
    ) -> Result<PartDone, ProcessingError> {
        let profile = profile(&job.profile)?;
        let url = self.presigned_source(&job.source).await?;
        let workspace = work_dir(&self.config.work_dir, "segment-")?;
        let output = match part {
            Part::Video { segment } => {
                let command = segment_command(
                    &profile,
                    &rendition.picture,
                    rendition.segments.rate,
                    segment,
                    url.as_ref(),
                    workspace.path(),
                );
                self.run_part(command.args, deadline, part, rendition, &profile).await?;
                command.output
            }
            Part::Audio { segment } => {
                let encoded = workspace.path().join("encoded.aac");
                let args = audio_segment_args(&profile, segment, url.as_ref(), &encoded);
                self.run_part(args, deadline, part, rendition, &profile).await?;
                let frames = std::fs::read(&encoded).map_err(local_io("read", &encoded))?;
                let kept = keep_audio_frames(&frames, segment).map_err(|why| {
                    ProcessingError::failed(
                        Code::SegmentedRenditionFailed,
                        format!("{}: {why}", part_name(part, rendition, &profile)),
                    )
                })?;
                let output = workspace.path().join(part.file_name());
                std::fs::write(&output, kept).map_err(local_io("write", &output))?;
                output
            }
        };
        let key = part_key(job, part);
        let options = UploadOptions {
            content_type: Some("application/octet-stream".to_owned()),
            metadata: Vec::new(),
        };
        let bytes = upload_file(&self.s3, &output, &job.output_bucket, &key, &options).await?;
        tracing::info!(bytes, key, "part encoded");
        self.publish_progress(job, rendition.parts.len()).await;
        Ok(PartDone {
            part: part.clone(),
            key,
            bytes,
            billed_ms: billed_ms(started),
            scratch_bytes: disk_used(workspace.path()),
        })
    }

    /// Runs a part's ffmpeg; its error names the part.
    async fn run_part(
        &self,
        args: Vec<OsString>,
        deadline: Deadline,
        part: &Part,
        rendition: &PlannedRendition,
        profile: &RenditionProfile,
    ) -> Result<(), ProcessingError> {
        Supervised::new(&self.config.ffmpeg, deadline)
            .args(args)
            .run()
            .await
            .map(drop)
            .map_err(|err| part_error(part, rendition, profile, err))
    }

    /// Publishes how many parts are in scratch so far. Progress is a courtesy: a failure to
    /// count or publish it is logged and does not fail the part.
    async fn publish_progress(&self, job: &SegmentedJob, parts_total: usize) {
        let parts_done = match self.scratch_keys(job).await {
            Ok(keys) => keys.len(),
            Err(err) => {
                tracing::warn!(reason = %err.reason, "could not count the parts done; no progress published");
                return;
            }
        };
        let result = PipelineResult {
            progress: Some(Progress::new(parts_done as u32, parts_total as u32)),
            ..bare_result(job, ResultStatus::InProgress)
        };
        if let Err(err) = publish_json(&self.sns, &self.config.results_topic_arn, &result, &result.attributes()).await {
            tracing::warn!(reason = %err.reason, "could not publish the progress");
        }
    }

    /// Appends the video parts, muxes the audio, writes the rendition and answers `available`.
    #[tracing::instrument(skip_all, fields(key = %job.source.key, profile = %job.profile))]
    async fn join(
        &self,
        job: &SegmentedJob,
        rendition: &PlannedRendition,
        parts_done: &[PartDone],
        deadline: Deadline,
        invocation: &Invocation<'_>,
    ) -> Result<RenditionOutput, ProcessingError> {
        let profile = profile(&job.profile)?;
        let (videos, audios) = parts_in_join_order(rendition, parts_done)?;
        let workspace = work_dir(&self.config.work_dir, "join-")?;
        let appended = workspace.path().join("video.ts");
        self.append_parts(job, &videos, workspace.path(), &appended).await?;
        let audio_file = if audios.is_empty() {
            None
        } else {
            let path = workspace.path().join("audio.aac");
            self.append_parts(job, &audios, workspace.path(), &path).await?;
            Some(path)
        };
        let output_path = workspace.path().join("output.mp4");
        Supervised::new(&self.config.ffmpeg, deadline)
            .args(join_args(&profile, &appended, audio_file.as_deref(), &output_path))
            .run()
            .await
            .map_err(|e| e.into_processing_error(Code::TranscodeFailed))?;
        let (width, height, duration_secs) = probe_output(&self.config.ffprobe, &output_path, deadline).await?;
        let segments = videos.len();
        let note = [
            rendition.note.clone(),
            Some(format!(
                "rendered in {segments} segments joined by stream copy{}",
                match audios.len() {
                    0 => String::new(),
                    1 => ", audio encoded once".to_owned(),
                    n => format!(", audio in {n} segments"),
                }
            )),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        let description = OutputDescription {
            source_bucket: &job.source.bucket,
            source_key: &job.source.key,
            source_etag: job.source.etag.as_deref(),
            profile: &job.profile,
            width,
            height,
            duration_secs,
            upscale_avoided: rendition.picture.upscale_avoided,
            note: Some(&note),
        };
        let options = UploadOptions {
            content_type: Some("video/mp4".to_owned()),
            metadata: description.metadata(),
        };
        let bytes = upload_file(&self.s3, &output_path, &job.output_bucket, &job.output_key, &options).await?;
        let scratch_bytes = std::fs::metadata(&appended).map(|m| m.len()).unwrap_or(0) + bytes;
        tracing::info!(output_key = %job.output_key, bytes, scratch_bytes, segments, duration_secs, "rendition joined and uploaded");
        let output = RenditionOutput {
            bucket: job.output_bucket.clone(),
            key: job.output_key.clone(),
            width,
            height,
            duration_secs,
            bytes,
            upscale_avoided: rendition.picture.upscale_avoided,
            note: Some(note),
        };
        let billed = std::iter::once(rendition.billed_ms)
            .chain(parts_done.iter().map(|p| p.billed_ms))
            .chain(std::iter::once(billed_ms(invocation.started)));
        let result = PipelineResult {
            output: Some(output.clone()),
            compute: Some(Compute::of_invocations(
                billed,
                invocation.memory_mb,
                self.config.price_per_gb_second,
            )),
            ..bare_result(job, ResultStatus::Available)
        };
        self.answer(job, &result, invocation.request_id).await?;
        self.delete_scratch(job).await;
        Ok(output)
    }

    /// Downloads `parts` from scratch one at a time (through a file in `dir`) and appends them,
    /// in order, into the file `into`.
    async fn append_parts(
        &self,
        job: &SegmentedJob,
        parts: &[&PartDone],
        dir: &std::path::Path,
        into: &std::path::Path,
    ) -> Result<(), ProcessingError> {
        let part_file = dir.join("part");
        let mut out = std::fs::File::create(into).map_err(local_io("create", into))?;
        for done in parts {
            download_to_file(&self.s3, &job.output_bucket, &done.key, &part_file).await?;
            let mut part = std::fs::File::open(&part_file).map_err(local_io("open", &part_file))?;
            std::io::copy(&mut part, &mut out).map_err(local_io("append", into))?;
        }
        Ok(())
    }

    /// Publishes what ended the execution (from a `Catch`, or from the execution's end event)
    /// and deletes its scratch parts.
    #[tracing::instrument(skip_all, fields(key = %job.source.key, profile = %job.profile))]
    async fn publish_failure(
        &self,
        job: &SegmentedJob,
        err: &ProcessingError,
        delivery: &str,
    ) -> Result<Code, ProcessingError> {
        tracing::error!(code = %err.code(), reason = %err.reason, "segmented rendition ended without its output");
        let result = PipelineResult::from_error(Job::Rendition, job.source.clone(), Some(job.profile.clone()), err);
        self.answer(job, &result, delivery).await?;
        self.delete_scratch(job).await;
        Ok(err.code())
    }

    /// Answers an execution that ended without `answerFailure` (aborted, timed out, or failed
    /// in `answerFailure` itself); any other end was answered by the execution.
    #[tracing::instrument(skip_all, fields(execution = %ended.name, status = %ended.status))]
    async fn answer_execution_end(
        &self,
        ended: &ExecutionStatusChange,
        delivery: &str,
    ) -> Result<Value, ProcessingError> {
        match failure_from_execution_end(ended)? {
            None => {
                tracing::info!("the execution answered for itself; nothing to add");
                Ok(json!({ "skipped": ended.status }))
            }
            Some((job, err)) => self
                .publish_failure(&job, &err, delivery)
                .await
                .map(|code| json!({ "answered": code })),
        }
    }

    async fn answer(
        &self,
        job: &SegmentedJob,
        result: &PipelineResult,
        request_id: &str,
    ) -> Result<(), ProcessingError> {
        let publication = publish_rendition_result(
            &self.ledger,
            &self.sns,
            &self.config.results_topic_arn,
            &job.profile,
            &job.source_version,
            request_id,
            result,
        )
        .await?;
        tracing::info!(
            status = result.status.as_str(),
            publication = publication.as_str(),
            "result answered"
        );
        Ok(())
    }

    async fn presigned_source(&self, source: &ObjectRef) -> Result<OsString, ProcessingError> {
        presigned_get_url(&self.s3, &source.bucket, &source.key, SOURCE_URL_TTL).await
    }

    /// The error of the part that failed a Map Run of `execution`, as the `Catch` of an inline
    /// Map would have seen it (the part's kind and `CODE: reason`); the earliest part in the file
    /// when more than one failed ([`earliest_failed_part`]). `None` when the Map Run lists no
    /// failed part. A fault reading it is retryable: `AnswerFailure` retries, and past its
    /// retries the execution's end is answered from its status event.
    async fn failed_part_error(&self, execution: &str) -> Result<Option<StatesError>, ProcessingError> {
        let runs = self
            .sfn
            .list_map_runs()
            .execution_arn(execution)
            .send()
            .await
            .map_err(|e| ProcessingError::from_sdk("ListMapRuns", e))?;
        let mut failed = Vec::new();
        for run in runs.map_runs() {
            // One page: AWS stops a Map Run at its first failed part (no failure is tolerated).
            let children = self
                .sfn
                .list_executions()
                .map_run_arn(run.map_run_arn())
                .status_filter(ExecutionStatus::Failed)
                .max_results(100)
                .send()
                .await
                .map_err(|e| ProcessingError::from_sdk("ListExecutions", e))?;
            for child in children.executions() {
                let child = self
                    .sfn
                    .describe_execution()
                    .execution_arn(child.execution_arn())
                    .send()
                    .await
                    .map_err(|e| ProcessingError::from_sdk("DescribeExecution", e))?;
                let part = child
                    .input()
                    .and_then(|input| serde_json::from_str::<SegmentTask>(input).ok())
                    .and_then(|task| match task {
                        SegmentTask::Encode { part, .. } => Some(part),
                        _ => None,
                    });
                let error = StatesError {
                    error: child.error().unwrap_or_default().to_owned(),
                    cause: child.cause().map(str::to_owned),
                };
                failed.push((part, error));
            }
        }
        let count = failed.len();
        let earliest = earliest_failed_part(failed);
        match &earliest {
            Some(error) => {
                tracing::info!(failed = count, error = %error.error, "the failed part's own error, read from its Map Run")
            }
            None => tracing::warn!(
                execution,
                "the Map Run failed but lists no failed part; its own error is answered"
            ),
        }
        Ok(earliest)
    }

    async fn scratch_keys(&self, job: &SegmentedJob) -> Result<Vec<String>, ProcessingError> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&job.output_bucket)
            .prefix(&job.scratch_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ProcessingError::from_sdk("S3 ListObjectsV2", e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    /// Deletes the job's scratch parts. The scratch lifecycle rule removes what a failure here
    /// leaves, so it is logged, not raised.
    async fn delete_scratch(&self, job: &SegmentedJob) {
        let keys = match self.scratch_keys(job).await {
            Ok(keys) => keys,
            Err(err) => {
                tracing::warn!(reason = %err.reason, "could not list the scratch parts; the lifecycle rule will remove them");
                return;
            }
        };
        for key in &keys {
            if let Err(err) = self.s3.delete_object().bucket(&job.output_bucket).key(key).send().await {
                tracing::warn!(key, error = %err, "could not delete a scratch part; the lifecycle rule will remove it");
            }
        }
        tracing::info!(deleted = keys.len(), prefix = %job.scratch_prefix, "scratch parts deleted");
    }
}

/// The invocation that runs a `join`.
struct Invocation<'a> {
    request_id: &'a str,
    started: Instant,
    memory_mb: u32,
}

/// The bytes of the files directly in `dir` (a task's workspace: its part, and a segment's
/// dropped lead-in and lead-out), which is what the task needed of local disk.
fn disk_used(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

/// What Step Functions carries from one state to the next, at most (its payload quota).
const STATE_QUOTA_BYTES: usize = 256 * 1024;

/// Whether `planned` fits in one execution. The join's input holds the job, the plan and every
/// part's answer; a state over [`STATE_QUOTA_BYTES`] would fail the execution with
/// `States.DataLimitExceeded`, which tells a reader of the results nothing they could act on.
/// Measured on the plan itself with every part's answer at its longest (20-digit numbers), so a
/// plan that fits here fits at the join. At the template's 60 s segments that is six hours of
/// source at least (three and a half at 30 s; S3's longest keys); a longer one may be rejected,
/// by name, with what would make it fit.
fn fits_in_one_execution(
    job: &SegmentedJob,
    planned: &PlannedRendition,
    segment_seconds: f64,
) -> Result<(), ProcessingError> {
    let longest_answers: Vec<PartDone> = planned
        .parts
        .iter()
        .map(|part| PartDone {
            part: part.clone(),
            key: part_key(job, part),
            bytes: u64::MAX,
            billed_ms: u64::MAX,
            scratch_bytes: u64::MAX,
        })
        .collect();
    let join_input = json!({ "job": job, "planned": { "rendition": planned }, "partsDone": longest_answers });
    let bytes = join_input.to_string().len();
    if bytes <= STATE_QUOTA_BYTES {
        return Ok(());
    }
    Err(ProcessingError::rejected(
        Code::SourceTooLong,
        format!(
            "the source's {:.1} hours make {} parts, whose plan and answers need {} KiB of Step Functions state where an execution carries {} KiB; longer segments make fewer parts (the template's SegmentSeconds, {segment_seconds} s here)",
            planned.source_duration_secs / 3600.0,
            planned.parts.len(),
            bytes.div_ceil(1024),
            STATE_QUOTA_BYTES / 1024
        ),
    ))
}

fn billed_ms(started: Instant) -> u64 {
    started.elapsed().as_millis().max(1) as u64
}

fn profile(name: &str) -> Result<RenditionProfile, ProcessingError> {
    RenditionProfile::built_in(name).ok_or_else(|| {
        ProcessingError::failed(
            Code::SegmentedRenditionFailed,
            format!("the job names no profile of this deployment ({name:?})"),
        )
    })
}

/// A result of this job without output, reason or compute yet.
fn bare_result(job: &SegmentedJob, status: ResultStatus) -> PipelineResult {
    PipelineResult {
        version: CONTRACT_VERSION,
        job: Job::Rendition,
        status,
        source: job.source.clone(),
        profile: Some(job.profile.clone()),
        output: None,
        reason: None,
        mediaconvert: None,
        compute: None,
        progress: None,
    }
}

/// What a part's ffmpeg run ending in error means. A segment stops at the first decoding error
/// (`-xerror`), so a damaged source is named as such, with where its damage is.
fn part_error(part: &Part, rendition: &PlannedRendition, profile: &RenditionProfile, err: RunError) -> ProcessingError {
    let what = part_name(part, rendition, profile);
    let code = match part {
        Part::Video { .. } => Code::CorruptInput,
        Part::Audio { .. } => Code::TranscodeFailed,
    };
    match err {
        RunError::Exit { .. } => {
            ProcessingError::failed(code, format!("{what}: ffmpeg stopped: {}", err.stderr_tail()))
        }
        other => {
            let err = other.into_processing_error(Code::TranscodeFailed);
            ProcessingError {
                reason: format!("{what}: {}", err.reason),
                ..err
            }
        }
    }
}

/// A part as a reason names it: "segment 3 (from 90.000 s)", "audio segment 1 (from 300.032 s)".
fn part_name(part: &Part, rendition: &PlannedRendition, profile: &RenditionProfile) -> String {
    match part {
        Part::Video { segment } => format!(
            "segment {} (from {:.3} s)",
            segment.index,
            rendition.segments.rate.seconds_at(segment.first_frame)
        ),
        Part::Audio { segment } if segment.first_frame == 0 && segment.frames.is_none() => "the audio".to_owned(),
        Part::Audio { segment } => format!(
            "audio segment {} (from {:.3} s)",
            segment.index,
            segment.start_secs(profile.audio.sample_rate)
        ),
    }
}

/// The parts to join, checked against the plan: the video segments in order, and the audio
/// segments in order.
/// The video segments of `segments` as parts, in join order.
fn video_parts(segments: &SegmentPlan) -> Vec<Part> {
    segments
        .segments
        .iter()
        .map(|segment| Part::Video {
            segment: segment.clone(),
        })
        .collect()
}

/// Where `part` is written: under the job's scratch prefix.
fn part_key(job: &SegmentedJob, part: &Part) -> String {
    format!("{}{}", job.scratch_prefix, part.file_name())
}

/// Of the parts that failed (each with its error), the one earliest in the file: the video
/// segments by index, then the audio segments, then any whose part could not be read.
fn earliest_failed_part(failed: Vec<(Option<Part>, StatesError)>) -> Option<StatesError> {
    failed
        .into_iter()
        .min_by_key(|(part, _)| match part {
            Some(Part::Video { segment }) => (0, segment.index),
            Some(Part::Audio { segment }) => (1, segment.index),
            None => (2, 0),
        })
        .map(|(_, error)| error)
}

fn parts_in_join_order<'a>(
    rendition: &PlannedRendition,
    parts_done: &'a [PartDone],
) -> Result<(Vec<&'a PartDone>, Vec<&'a PartDone>), ProcessingError> {
    let in_order = |video: bool| {
        let mut parts: Vec<&PartDone> = parts_done
            .iter()
            .filter(|p| matches!(p.part, Part::Video { .. }) == video)
            .collect();
        parts.sort_by_key(|p| match &p.part {
            Part::Video { segment } => segment.index,
            Part::Audio { segment } => segment.index,
        });
        parts
    };
    let (videos, audios) = (in_order(true), in_order(false));
    let expected: Vec<&Part> = rendition.parts.iter().collect();
    let got: Vec<&Part> = videos.iter().chain(&audios).map(|p| &p.part).collect();
    if got != expected {
        return Err(ProcessingError::failed(
            Code::SegmentedRenditionFailed,
            format!(
                "the join got {} parts, not the {} planned ones in order",
                got.len(),
                expected.len()
            ),
        ));
    }
    Ok((videos, audios))
}

/// What the function was invoked with; anything else is refused by name (it is then in the
/// function's error, and for an EventBridge invoke in its dead-letter queue).
pub fn invocation(payload: Value) -> Result<SegmentedInvocation, ProcessingError> {
    serde_json::from_value(payload).map_err(|e| {
        ProcessingError::rejected(
            Code::MalformedEvent,
            format!("neither a task of the state machine nor a Step Functions status event: {e}"),
        )
    })
}

/// What an execution's end asks this function to publish, if anything: the job and why it
/// ended. A success, or a failure through the `RenditionFailed` state ([`ANSWERED_FAILURE`]),
/// has been answered by the execution itself.
pub fn failure_from_execution_end(
    ended: &ExecutionStatusChange,
) -> Result<Option<(SegmentedJob, ProcessingError)>, ProcessingError> {
    let err = match (ended.status.as_str(), ended.error.as_deref()) {
        ("FAILED", Some(ANSWERED_FAILURE)) => return Ok(None),
        ("TIMED_OUT", _) => ProcessingError::failed(
            Code::Timeout,
            "the execution ran past the state machine's time limit (SegmentedExecutionTimeoutSeconds) and was stopped",
        ),
        ("ABORTED", _) => ProcessingError::failed(
            Code::SegmentedRenditionFailed,
            match ended.cause.as_deref().filter(|c| !c.is_empty()) {
                Some(cause) => format!("the execution was stopped (ABORTED): {cause}"),
                None => "the execution was stopped (ABORTED)".to_owned(),
            },
        ),
        ("FAILED", error) => ProcessingError::failed(
            Code::SegmentedRenditionFailed,
            format!(
                "the execution failed before it could answer: {}: {}",
                error.unwrap_or("no error given"),
                ended.cause.as_deref().unwrap_or("no cause given")
            ),
        ),
        _ => return Ok(None),
    };
    let unreadable = |why: String| {
        ProcessingError::rejected(
            Code::MalformedEvent,
            format!("execution {} ended {} but {why}", ended.name, ended.status),
        )
    };
    let input = ended
        .input
        .as_deref()
        .ok_or_else(|| unreadable("its event carries no input".to_owned()))?;
    let input: ExecutionInput =
        serde_json::from_str(input).map_err(|e| unreadable(format!("its input is not a segmented job: {e}")))?;
    Ok(Some((input.job, err)))
}

/// What a `Catch` caught, as the result to publish. A task's own error carries its kind as the
/// name and `CODE: reason` in the cause (inside Lambda's error JSON on AWS); a retryable fault
/// that reached the `Catch` has used its retries. Anything else is Step Functions' own word.
pub fn failure_from_states_error(error: &StatesError) -> ProcessingError {
    let cause = error.cause.clone().unwrap_or_default();
    let message = serde_json::from_str::<Value>(&cause)
        .ok()
        .and_then(|v| v.get("errorMessage").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or(cause);
    let kind = match error.error.as_str() {
        "rejected" => Some(ErrorKind::Rejected),
        "failed" => Some(ErrorKind::Failed),
        "retryable" => Some(ErrorKind::Retryable),
        _ => None,
    };
    let named = message
        .split_once(": ")
        .and_then(|(code, reason)| code.parse::<Code>().ok().map(|code| (code, reason.to_owned())));
    match (kind, named) {
        (Some(ErrorKind::Rejected), Some((code, reason))) => ProcessingError::rejected(code, reason),
        (Some(ErrorKind::Failed), Some((code, reason))) => ProcessingError::failed(code, reason),
        (Some(ErrorKind::Retryable), Some((code, reason))) => {
            ProcessingError::failed(code, format!("gave up after the state machine's retries: {reason}"))
        }
        _ if error.error == "States.Timeout" => ProcessingError::failed(
            Code::Timeout,
            format!("a task ran past its timeout on every attempt: {message}"),
        ),
        _ => ProcessingError::failed(
            Code::SegmentedRenditionFailed,
            format!(
                "{}: {}",
                error.error,
                if message.is_empty() { "no cause given" } else { &message }
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states_error(error: &str, cause: &str) -> StatesError {
        StatesError {
            error: error.to_owned(),
            cause: Some(cause.to_owned()),
        }
    }

    #[test]
    fn a_tasks_own_error_is_answered_with_its_code_and_reason() {
        let lambda_cause = r#"{"errorMessage":"CORRUPT_INPUT: segment 3 (from 90.000 s): ffmpeg stopped: Invalid NAL unit size","errorType":"failed"}"#;
        let err = failure_from_states_error(&states_error("failed", lambda_cause));
        assert_eq!((err.code(), err.kind), (Code::CorruptInput, ErrorKind::Failed));
        assert_eq!(
            err.reason,
            "segment 3 (from 90.000 s): ffmpeg stopped: Invalid NAL unit size"
        );
        // The same without Lambda's JSON around it.
        let err = failure_from_states_error(&states_error("rejected", "NOT_VIDEO: no video stream"));
        assert_eq!((err.code(), err.kind), (Code::NotVideo, ErrorKind::Rejected));
    }

    #[test]
    fn a_fault_past_its_retries_is_failed_with_its_code() {
        let err = failure_from_states_error(&states_error("retryable", "S3_READ_FAILED: connection reset"));
        assert_eq!((err.code(), err.kind), (Code::S3ReadFailed, ErrorKind::Failed));
        assert!(
            err.reason.starts_with("gave up after the state machine's retries"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn step_functions_own_errors_are_named() {
        let err = failure_from_states_error(&states_error("States.Timeout", "Task timed out"));
        assert_eq!((err.code(), err.kind), (Code::Timeout, ErrorKind::Failed));
        let err = failure_from_states_error(&states_error("Lambda.Unknown", "The function crashed"));
        assert_eq!(err.code(), Code::SegmentedRenditionFailed);
        assert_eq!(err.reason, "Lambda.Unknown: The function crashed");
        let err = failure_from_states_error(&StatesError {
            error: "States.Runtime".into(),
            cause: None,
        });
        assert_eq!(err.reason, "States.Runtime: no cause given");
    }

    #[test]
    fn a_task_error_reaches_step_functions_as_its_kind_and_code() {
        let diagnostic: Diagnostic =
            TaskError(ProcessingError::retryable(Code::S3ReadFailed, "connection reset")).into();
        assert_eq!(diagnostic.error_type, "retryable");
        assert_eq!(diagnostic.error_message, "S3_READ_FAILED: connection reset");
        let back = failure_from_states_error(&states_error(&diagnostic.error_type, &diagnostic.error_message));
        assert_eq!(back.code(), Code::S3ReadFailed);
    }

    const ABORTED: &str = include_str!("../../../shared/fixtures/segmented-rendition-execution-aborted.json");

    fn ended(status: &str, error: Option<&str>, cause: Option<&str>) -> ExecutionStatusChange {
        let SegmentedInvocation::ExecutionEnded(event) = serde_json::from_str(ABORTED).unwrap() else {
            panic!("the fixture is an execution's end");
        };
        ExecutionStatusChange {
            status: status.to_owned(),
            error: error.map(str::to_owned),
            cause: cause.map(str::to_owned),
            ..event.detail
        }
    }

    #[test]
    fn an_execution_that_ended_without_answering_is_answered_by_name() {
        let (job, err) = failure_from_execution_end(&ended("ABORTED", None, None))
            .unwrap()
            .unwrap();
        assert_eq!(job.profile, "720p");
        assert_eq!(job.source.key, "uploads/lecture 01.mp4");
        assert_eq!(
            (err.code(), err.kind),
            (Code::SegmentedRenditionFailed, ErrorKind::Failed)
        );
        assert_eq!(err.reason, "the execution was stopped (ABORTED)");
        let (_, err) = failure_from_execution_end(&ended("ABORTED", Some("Operator"), Some("wrong source")))
            .unwrap()
            .unwrap();
        assert_eq!(err.reason, "the execution was stopped (ABORTED): wrong source");

        let (_, err) = failure_from_execution_end(&ended("TIMED_OUT", None, None))
            .unwrap()
            .unwrap();
        assert_eq!((err.code(), err.kind), (Code::Timeout, ErrorKind::Failed));

        // answerFailure itself gave up: the execution failed elsewhere than its Fail state.
        let (_, err) = failure_from_execution_end(&ended("FAILED", Some("Lambda.ServiceException"), Some("down")))
            .unwrap()
            .unwrap();
        assert_eq!(err.code(), Code::SegmentedRenditionFailed);
        assert_eq!(
            err.reason,
            "the execution failed before it could answer: Lambda.ServiceException: down"
        );
    }

    #[test]
    fn an_execution_that_answered_for_itself_is_not_answered_again() {
        assert!(
            failure_from_execution_end(&ended("FAILED", Some(ANSWERED_FAILURE), Some("answered")))
                .unwrap()
                .is_none()
        );
        assert!(failure_from_execution_end(&ended("SUCCEEDED", None, None))
            .unwrap()
            .is_none());
        assert!(failure_from_execution_end(&ended("RUNNING", None, None))
            .unwrap()
            .is_none());
    }

    #[test]
    fn an_end_without_a_readable_job_is_rejected_by_name() {
        let mut without_input = ended("ABORTED", None, None);
        without_input.input = None;
        let err = failure_from_execution_end(&without_input).unwrap_err();
        assert_eq!((err.code(), err.kind), (Code::MalformedEvent, ErrorKind::Rejected));
        without_input.input = Some("{\"job\": 1}".to_owned());
        let err = failure_from_execution_end(&without_input).unwrap_err();
        assert!(err.reason.contains("is not a segmented job"), "{}", err.reason);
    }

    #[test]
    fn anything_else_is_refused_by_name() {
        let err = invocation(json!({ "left_by": "an-earlier-run" })).unwrap_err();
        assert_eq!((err.code(), err.kind), (Code::MalformedEvent, ErrorKind::Rejected));
        let err = invocation(json!({ "task": "transcode" })).unwrap_err();
        assert_eq!(err.code(), Code::MalformedEvent);
    }

    #[test]
    fn a_task_is_told_apart_from_an_execution_end() {
        let task = json!({ "task": "plan", "job": serde_json::from_str::<Value>(include_str!(
            "../../../shared/fixtures/segmented-rendition-job.json"
        )).unwrap() });
        assert!(matches!(
            serde_json::from_value(task).unwrap(),
            SegmentedInvocation::Task(SegmentTask::Plan { .. })
        ));
    }

    #[test]
    fn a_failed_map_run_is_answered_with_the_execution_to_read_its_part_from() {
        let job: Value =
            serde_json::from_str(include_str!("../../../shared/fixtures/segmented-rendition-job.json")).unwrap();
        let execution = "arn:aws:states:us-east-1:000000000000:execution:video-suite-segmented-rendition:720p-3f2a";
        let task = json!({
            "task": "answerFailure",
            "job": job,
            "error": { "Error": MAP_RUN_FAILED, "Cause": "The specified tolerated failure threshold was exceeded" },
            "executionArn": execution,
        });
        let Ok(SegmentedInvocation::Task(SegmentTask::AnswerFailure {
            error, execution_arn, ..
        })) = invocation(task)
        else {
            panic!("not an answerFailure task");
        };
        assert_eq!(
            (error.error.as_str(), execution_arn.as_deref()),
            (MAP_RUN_FAILED, Some(execution))
        );
        // When no failed part can be read, the Map Run's own error is answered, by name.
        let err = failure_from_states_error(&error);
        assert_eq!(err.code(), Code::SegmentedRenditionFailed);
        assert!(
            err.reason
                .starts_with("States.ExceedToleratedFailureThreshold: The specified tolerated"),
            "{}",
            err.reason
        );
        // A part's own error, as DescribeExecution gives it for the failed child execution.
        let part = states_error(
            "failed",
            r#"{"errorType":"failed","errorMessage":"CORRUPT_INPUT: segment 7 (from 210.000 s): ffmpeg failed"}"#,
        );
        let err = failure_from_states_error(&part);
        assert_eq!((err.code(), err.kind), (Code::CorruptInput, ErrorKind::Failed));
        assert!(err.reason.starts_with("segment 7 (from 210.000 s)"), "{}", err.reason);
    }

    #[test]
    fn of_several_failed_parts_the_earliest_in_the_file_is_answered() {
        let failed = vec![
            (
                Some(audio(0)),
                states_error("failed", "SEGMENTED_RENDITION_FAILED: the audio"),
            ),
            (None, states_error("States.Runtime", "unreadable input")),
            (Some(video(3)), states_error("failed", "CORRUPT_INPUT: segment 3")),
            (Some(video(2)), states_error("failed", "CORRUPT_INPUT: segment 2")),
        ];
        let earliest = earliest_failed_part(failed).unwrap();
        assert_eq!(earliest.cause.as_deref(), Some("CORRUPT_INPUT: segment 2"));
        assert_eq!(earliest_failed_part(vec![]), None);
    }

    fn plan_of(parts: Vec<Part>) -> PlannedRendition {
        serde_json::from_value(json!({
            "picture": { "width": 640, "height": 360, "upscaleAvoided": true, "hasAudio": true },
            "sourceDurationSecs": 10.0,
            "segments": { "rate": { "num": 30, "den": 1 }, "expectedFrames": 300, "segments": [] },
            "parts": parts,
            "billedMs": 5
        }))
        .unwrap()
    }

    fn video(index: u32) -> Part {
        serde_json::from_value(json!({ "kind": "video", "segment": { "index": index, "firstFrame": index * 60, "firstKeyframeInterval": index } })).unwrap()
    }

    fn done(part: Part) -> PartDone {
        PartDone {
            key: part.file_name(),
            part,
            bytes: 1,
            billed_ms: 1,
            scratch_bytes: 1,
        }
    }

    fn audio(index: u32) -> Part {
        serde_json::from_value(json!({ "kind": "audio", "segment": { "index": index, "firstFrame": index * 14063 } }))
            .unwrap()
    }

    #[test]
    fn the_join_takes_the_parts_in_segment_order_whatever_order_the_map_returned() {
        let plan = plan_of(vec![video(0), video(1), video(2), audio(0), audio(1)]);
        let returned = vec![
            done(audio(1)),
            done(video(2)),
            done(video(0)),
            done(audio(0)),
            done(video(1)),
        ];
        let (videos, audios) = parts_in_join_order(&plan, &returned).unwrap();
        let names = |parts: &[&PartDone]| parts.iter().map(|p| p.key.clone()).collect::<Vec<_>>();
        assert_eq!(names(&videos), ["video-00000.ts", "video-00001.ts", "video-00002.ts"]);
        assert_eq!(names(&audios), ["audio-00000.aac", "audio-00001.aac"]);
    }

    /// The plan of `hours` of 30 fps source with sound, cut as the function cuts it.
    fn plan_of_hours(hours: f64, segment_seconds: f64) -> PlannedRendition {
        let rate = FrameRate::from_fps(30.0).unwrap();
        let segments = SegmentPlan::new(hours * 3600.0, rate, 2.0, segment_seconds, 1.0, 0.5);
        let mut parts = video_parts(&segments);
        let audio_frames_per_segment = (DEFAULT_AUDIO_SEGMENT_SECS * 48_000.0 / 1024.0).round() as u32;
        parts.extend((0..(hours * 12.0).ceil() as u32).map(|index| {
            serde_json::from_value::<Part>(json!({ "kind": "audio", "segment": {
                "index": index, "firstFrame": index * audio_frames_per_segment, "frames": audio_frames_per_segment,
                "leadInFrames": 47, "leadOutFrames": 24 } }))
            .unwrap()
        }));
        PlannedRendition {
            segments,
            parts,
            source_duration_secs: hours * 3600.0,
            ..plan_of(vec![])
        }
    }

    #[test]
    fn a_plan_too_large_for_one_execution_is_rejected_by_name() {
        let mut job: SegmentedJob =
            serde_json::from_str(include_str!("../../../shared/fixtures/segmented-rendition-job.json")).unwrap();
        // S3's longest keys, written twice in the job (the source, the output).
        job.source.key = format!("uploads/{}", "k".repeat(1016));
        job.output_key = format!("renditions/{}/720p.mp4", job.source.key);
        // `hours` of source cut into segments of `secs`, checked as the function checks it.
        let fits = |hours: f64, secs: f64| fits_in_one_execution(&job, &plan_of_hours(hours, secs), secs);
        assert!(fits(1.0, 30.0).is_ok());
        assert!(fits(3.5, 30.0).is_ok());
        assert!(fits(4.0, 30.0).is_err());
        let err = fits(6.0, 30.0).unwrap_err();
        assert_eq!((err.code(), err.kind), (Code::SourceTooLong, ErrorKind::Rejected));
        assert!(
            err.reason.starts_with("the source's 6.0 hours make 792 parts"),
            "{}",
            err.reason
        );
        assert!(
            err.reason.contains("(the template's SegmentSeconds, 30 s here)"),
            "{}",
            err.reason
        );
        // Longer segments make the same source fit: the template's default, and longer still.
        assert!(fits(6.0, DEFAULT_SEGMENT_SECS).is_ok());
        assert!(fits(7.5, DEFAULT_SEGMENT_SECS).is_err());
        assert!(fits(6.0, 120.0).is_ok());
    }

    #[test]
    fn a_join_missing_a_part_is_refused_by_name() {
        let plan = plan_of(vec![video(0), video(1), audio(0), audio(1)]);
        let err = parts_in_join_order(&plan, &[done(video(0)), done(video(1)), done(audio(1))]).unwrap_err();
        assert_eq!(err.code(), Code::SegmentedRenditionFailed);
        assert!(err.reason.contains("3 parts, not the 4 planned"), "{}", err.reason);
    }

    #[test]
    fn a_part_is_named_with_where_it_starts() {
        let plan = plan_of(vec![video(0), audio(0)]);
        let profile = RenditionProfile::built_in("720p").unwrap();
        assert_eq!(part_name(&video(2), &plan, &profile), "segment 2 (from 4.000 s)");
        // Frame 14,063 of 1,024 samples at 48 kHz.
        assert_eq!(
            part_name(&audio(1), &plan, &profile),
            "audio segment 1 (from 300.011 s)"
        );
        let whole = Part::Audio {
            segment: AudioSegment::whole(),
        };
        assert_eq!(part_name(&whole, &plan, &profile), "the audio");
    }
}
