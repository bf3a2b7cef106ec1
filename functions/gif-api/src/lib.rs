//! The GIF task API (seed 000), one Lambda behind a Function URL. `POST` a JSON body (every
//! answer is a type of `shared::contracts::gif`, with a fixture in `shared/fixtures/gif-*.json`):
//!
//! * `{"action":"convert","src_url":…,"start"?,"duration"?,"width"?,"fps"?}` → a task in the
//!   `tasks` table (QUEUED, created time, TTL expiry) and a job on the GIF jobs queue;
//!   answers `202 {"task_id":…,"status":"QUEUED",…}`.
//! * `{"action":"get_task_status","task_id":…}` → `{"ready":false,"status":…,"progress":…}`
//!   while queued or running, `{"ready":true,"gif_url":…}` (presigned, one hour) when done,
//!   `{"ready":false,"status":"FAILED","error":{code,message}}` when it failed.
//! * Anything else is answered with a status and `{"error":{"code":…,"message":…}}`: 400 for bad
//!   JSON, an unknown or missing action, a missing or malformed task id, a refused source or a
//!   parameter out of bounds; 404 for an unknown (or expired) task; 405 for a method other than
//!   POST; 503 when a backing service fails (retrying may help).
//!
//! The source URL is checked here already (scheme, literal addresses, the input bucket) so that
//! a hopeless task is refused at once; the converter checks everything again, including every
//! address a name resolves to, before it connects.
//!
//! Crates: `lambda_http` (the runtime's own HTTP adapter) decodes Function URL and API Gateway
//! HTTP API (payload 2.0) events into an `http::Request`, base64 bodies included, so the same
//! handler serves both; `aws-sdk-dynamodb` for the table; `uuid` for task ids.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::Value;
use shared::config::{ConfigError, EnvReader};
use shared::contracts::gif::{ApiErrorAnswer, GifLink, TaskAccepted, TaskStatusAnswer};
use shared::contracts::Reason;
use shared::gif::{attr, gif_key, is_task_id, GifJob, GifLimits, RequestedParams, TaskStatus, GIF_JOB_VERSION};
use shared::source_url::{policy_from_env, AddressPolicy, SourceUrl};
use shared::{Code, ErrorKind, ProcessingError};

/// The largest request body read; a convert request is a few hundred bytes.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// `TASKS_TABLE`
    pub table: String,
    /// `GIF_JOBS_QUEUE_URL`
    pub queue_url: String,
    /// `GIF_BUCKET`: where the converter puts the GIFs (the output bucket).
    pub gif_bucket: String,
    /// `GIF_PREFIX` (default `gifs/`)
    pub gif_prefix: String,
    /// `INPUT_BUCKET`: the one bucket `s3://` sources may name.
    pub input_bucket: String,
    /// `SOURCE_LOOPBACK_ALLOW_LIST`: loopback `address:port`s sources may use (local only).
    pub policy: AddressPolicy,
    /// `MAX_GIF_SECONDS` (default 15)
    pub limits: GifLimits,
    /// `TASK_TTL_HOURS` (default 168): after this a task is gone (DynamoDB TTL).
    pub task_ttl: Duration,
    /// `GIF_LINK_SECS` (default 3600): how long a presigned link works.
    pub link_ttl: Duration,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let config = Config {
            table: env.required("TASKS_TABLE"),
            queue_url: env.required("GIF_JOBS_QUEUE_URL"),
            gif_bucket: env.required("GIF_BUCKET"),
            gif_prefix: env.optional_or("GIF_PREFIX", "gifs/".to_owned()),
            input_bucket: env.required("INPUT_BUCKET"),
            policy: policy_from_env(&mut env, "SOURCE_LOOPBACK_ALLOW_LIST"),
            limits: GifLimits::from_env(&mut env),
            task_ttl: Duration::from_secs(3600 * env.optional_or("TASK_TTL_HOURS", 168u64)),
            link_ttl: Duration::from_secs(env.optional_or("GIF_LINK_SECS", 3600u64)),
        };
        env.finish()?;
        Ok(config)
    }
}

/// An answer other than success: HTTP status, stable code, reason.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: Code,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A rejected input is the caller's to fix (400); a backing-service fault is ours (503).
    fn from_processing(err: ProcessingError) -> Self {
        match err.kind {
            ErrorKind::Rejected => ApiError::new(400, err.code(), err.reason),
            ErrorKind::Retryable | ErrorKind::Failed => {
                tracing::error!(code = %err.code(), reason = %err.reason, "backing service failed");
                ApiError::new(503, Code::ServiceUnavailable, "the service is unavailable; try again")
            }
        }
    }
}

pub struct Api {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub config: Config,
}

impl Api {
    /// The Lambda handler: never fails the invocation, every outcome is an HTTP answer.
    #[tracing::instrument(skip_all, fields(method = %request.method()))]
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let (status, body) = match self.answer(&request).await {
            Ok((status, body)) => (status, body),
            Err(err) => {
                tracing::info!(status = err.status, code = %err.code, message = %err.message, "request refused");
                let answer = ApiErrorAnswer {
                    error: Reason {
                        code: err.code,
                        message: err.message,
                    },
                };
                (err.status, as_json(&answer))
            }
        };
        Ok(Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("cache-control", "no-store")
            .body(Body::from(body.to_string()))
            .expect("status and headers are valid"))
    }

    async fn answer(&self, request: &Request) -> Result<(u16, Value), ApiError> {
        if request.method() != lambda_http::http::Method::POST {
            return Err(ApiError::new(
                405,
                Code::MethodNotAllowed,
                format!("use POST with a JSON body, not {}", request.method()),
            ));
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                413,
                Code::BodyTooLarge,
                format!("the body is {} bytes; at most {MAX_BODY_BYTES}", body.len()),
            ));
        }
        let payload: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::new(400, Code::BadJson, format!("the body is not JSON: {e}")))?;
        let Some(object) = payload.as_object() else {
            return Err(ApiError::new(400, Code::BadJson, "the body must be a JSON object"));
        };
        match object.get("action").and_then(Value::as_str) {
            Some("convert") => self.convert(&payload).await,
            Some("get_task_status") => self.get_task_status(&payload).await,
            Some(other) => Err(ApiError::new(
                400,
                Code::UnknownAction,
                format!("unknown action {other:?}; known: convert, get_task_status"),
            )),
            None => Err(ApiError::new(
                400,
                Code::MissingAction,
                "the body needs an \"action\": convert or get_task_status",
            )),
        }
    }

    async fn convert(&self, payload: &Value) -> Result<(u16, Value), ApiError> {
        let src_url = match payload.get("src_url") {
            Some(Value::String(url)) => url.clone(),
            Some(_) => return Err(ApiError::new(400, Code::SourceUrlInvalid, "src_url must be a string")),
            None => return Err(ApiError::new(400, Code::MissingSrcUrl, "convert needs a \"src_url\"")),
        };
        let source = SourceUrl::parse(&src_url, &self.config.policy, &self.config.input_bucket)
            .map_err(ApiError::from_processing)?;
        let requested: RequestedParams = serde_json::from_value(payload.clone()).map_err(|e| {
            ApiError::new(
                400,
                Code::InvalidParameter,
                format!("start and duration must be numbers, width and fps whole numbers: {e}"),
            )
        })?;
        let (params, duration_capped) = self
            .config
            .limits
            .resolve(requested)
            .map_err(ApiError::from_processing)?;

        let task_id = uuid::Uuid::new_v4().to_string();
        let now = chrono::Utc::now();
        let expires_at = now.timestamp() + self.config.task_ttl.as_secs() as i64;
        let created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let n = |v: String| AttributeValue::N(v);
        let s = |v: &str| AttributeValue::S(v.to_owned());
        self.dynamodb
            .put_item()
            .table_name(&self.config.table)
            .item(attr::TASK_ID, s(&task_id))
            .item(attr::STATUS, s(TaskStatus::Queued.as_str()))
            .item(attr::CREATED_AT, s(&created_at))
            .item(attr::UPDATED_AT, s(&created_at))
            .item(attr::EXPIRES_AT, n(expires_at.to_string()))
            .item(attr::SOURCE, s(&source.display_without_query()))
            .item(attr::START_SECS, n(params.start_secs.to_string()))
            .item(attr::DURATION_SECS, n(params.duration_secs.to_string()))
            .item(attr::WIDTH, n(params.width.to_string()))
            .item(attr::FPS, n(params.fps.to_string()))
            .item(attr::PROGRESS, n("0".into()))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", attr::TASK_ID)
            .send()
            .await
            .map_err(|e| ApiError::from_processing(ProcessingError::from_sdk("DynamoDB PutItem", e)))?;

        let job = GifJob {
            version: GIF_JOB_VERSION,
            task_id: task_id.clone(),
            src_url: src_url.trim().to_owned(),
            params,
        };
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.config.queue_url)
            .message_body(serde_json::to_string(&job).expect("a job serialises"))
            .send()
            .await;
        if let Err(err) = sent {
            // A task nobody will ever work on must not stay QUEUED: take it back.
            let err = ProcessingError::from_sdk("SQS SendMessage", err);
            if let Err(delete) = self
                .dynamodb
                .delete_item()
                .table_name(&self.config.table)
                .key(attr::TASK_ID, s(&task_id))
                .send()
                .await
            {
                tracing::error!(task_id, error = %ProcessingError::from_sdk("DynamoDB DeleteItem", delete), "could not remove the unqueued task");
            }
            return Err(ApiError::from_processing(err));
        }
        tracing::info!(task_id, source = %source.display_without_query(), ?params, "task queued");
        let answer = TaskAccepted {
            task_id,
            status: TaskStatus::Queued,
            start: params.start_secs,
            duration: params.duration_secs,
            width: params.width,
            fps: params.fps,
            expires_at,
            note: duration_capped
                .then(|| format!("duration capped at {} seconds", self.config.limits.max_duration_secs)),
        };
        Ok((202, as_json(&answer)))
    }

    async fn get_task_status(&self, payload: &Value) -> Result<(u16, Value), ApiError> {
        let task_id = match payload.get("task_id") {
            None | Some(Value::Null) => {
                return Err(ApiError::new(
                    400,
                    Code::MissingTaskId,
                    "get_task_status needs a \"task_id\"",
                ))
            }
            Some(Value::String(id)) if is_task_id(id) => id.as_str(),
            Some(other) => {
                return Err(ApiError::new(
                    400,
                    Code::InvalidTaskId,
                    format!("task ids are the UUIDs convert returns, not {other}"),
                ))
            }
        };
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.config.table)
            .key(attr::TASK_ID, AttributeValue::S(task_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ApiError::from_processing(ProcessingError::from_sdk("DynamoDB GetItem", e)))?
            .item;
        let not_found = || {
            ApiError::new(
                404,
                Code::TaskNotFound,
                format!("no task {task_id} (unknown or expired)"),
            )
        };
        let Some(item) = item else {
            return Err(not_found());
        };
        let task = TaskView::from_item(&item);
        // DynamoDB deletes expired items lazily (within days): expired is gone already.
        if task.expires_at.is_some_and(|at| at <= chrono::Utc::now().timestamp()) {
            return Err(not_found());
        }
        let status = task.status.ok_or_else(|| {
            tracing::error!(task_id, "task row without a known status");
            ApiError::new(503, Code::ServiceUnavailable, "the task is unreadable; try again")
        })?;
        let answer = match status {
            TaskStatus::Queued | TaskStatus::Running => {
                TaskStatusAnswer::in_progress(task_id, status, task.progress.unwrap_or(0))
            }
            TaskStatus::Done => {
                let key = task
                    .gif_key
                    .clone()
                    .unwrap_or_else(|| gif_key(&self.config.gif_prefix, task_id));
                let bucket = task
                    .gif_bucket
                    .clone()
                    .unwrap_or_else(|| self.config.gif_bucket.clone());
                let gif = GifLink {
                    gif_url: self.presign(&bucket, &key).await?,
                    link_expires_in: self.config.link_ttl.as_secs(),
                    width: task.gif_width,
                    height: task.gif_height,
                    frames: task.gif_frames,
                    bytes: task.gif_bytes,
                };
                TaskStatusAnswer::done(task_id, gif)
            }
            TaskStatus::Failed => {
                let reason = Reason {
                    code: task.error_code(task_id),
                    message: task.error_message.unwrap_or_default(),
                };
                TaskStatusAnswer::failed(task_id, reason)
            }
        };
        Ok((200, as_json(&answer)))
    }

    async fn presign(&self, bucket: &str, key: &str) -> Result<String, ApiError> {
        let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(self.config.link_ttl)
            .map_err(|e| ApiError::from_processing(ProcessingError::retryable(Code::PresignFailed, e.to_string())))?;
        let request = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .response_content_type("image/gif")
            .presigned(presigning)
            .await
            .map_err(|e| ApiError::from_processing(ProcessingError::from_sdk("S3 presign GetObject", e)))?;
        Ok(request.uri().to_owned())
    }
}

/// An answer as the JSON body it is sent as.
fn as_json(answer: &impl Serialize) -> Value {
    serde_json::to_value(answer).expect("the API's answers serialise")
}

/// The task row as the API reads it.
#[derive(Debug, Default)]
struct TaskView {
    status: Option<TaskStatus>,
    progress: Option<u32>,
    expires_at: Option<i64>,
    gif_bucket: Option<String>,
    gif_key: Option<String>,
    gif_bytes: Option<u64>,
    gif_width: Option<u32>,
    gif_height: Option<u32>,
    gif_frames: Option<u64>,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl TaskView {
    fn from_item(item: &std::collections::HashMap<String, AttributeValue>) -> TaskView {
        let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        fn n<T: std::str::FromStr>(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<T> {
            item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
        }
        TaskView {
            status: s(attr::STATUS).and_then(|status| status.parse().ok()),
            progress: n(item, attr::PROGRESS),
            expires_at: n(item, attr::EXPIRES_AT),
            gif_bucket: s(attr::GIF_BUCKET),
            gif_key: s(attr::GIF_KEY),
            gif_bytes: n(item, attr::GIF_BYTES),
            gif_width: n(item, attr::GIF_WIDTH),
            gif_height: n(item, attr::GIF_HEIGHT),
            gif_frames: n(item, attr::GIF_FRAMES),
            error_code: s(attr::ERROR_CODE),
            error_message: s(attr::ERROR_MESSAGE),
        }
    }

    /// A failed task's code. The converter writes a [`Code`] always; a row without one (or
    /// with a spelling this version does not know) is answered with the general `FAILED`.
    fn error_code(&self, task_id: &str) -> Code {
        match self.error_code.as_deref().map(str::parse::<Code>) {
            Some(Ok(code)) => code,
            Some(Err(unknown)) => {
                tracing::warn!(task_id, %unknown, "failed task with an unknown code; answered FAILED");
                Code::Failed
            }
            None => Code::Failed,
        }
    }
}

#[cfg(test)]
mod tests;
