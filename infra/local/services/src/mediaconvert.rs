//! A local AWS Elemental MediaConvert: the part of its REST API the pipeline uses, answering
//! what the real SDK sends (`/2017-08-29/...`, lowerCamelCase JSON), and jobs run by ffmpeg.
//!
//! | operation          | request                          |
//! |--------------------|----------------------------------|
//! | DescribeEndpoints  | `POST /2017-08-29/endpoints`     |
//! | CreateJob          | `POST /2017-08-29/jobs`          |
//! | ListJobs           | `GET /2017-08-29/jobs?queue&status&order&maxResults&nextToken` |
//! | GetJob             | `GET /2017-08-29/jobs/{id}`      |
//! | CancelJob          | `DELETE /2017-08-29/jobs/{id}`   |
//! | CreateJobTemplate  | `POST /2017-08-29/jobTemplates`  |
//! | GetJobTemplate     | `GET /2017-08-29/jobTemplates/{name}` |
//! | ListJobTemplates   | `GET /2017-08-29/jobTemplates?category&listBy&order&maxResults&nextToken` |
//! | CreatePreset       | `POST /2017-08-29/presets`       |
//! | GetPreset          | `GET /2017-08-29/presets/{name}` |
//! | ListPresets        | `GET /2017-08-29/presets?...`    |
//!
//! A CreateJob naming a `JobTemplate`, or outputs naming a `Preset`, is merged into one complete
//! job when it is received ([`templates`]), and the job keeps the merged settings.
//!
//! A job goes SUBMITTED → PROGRESSING (phases PROBING, TRANSCODING, UPLOADING, with
//! `jobPercentComplete`) → COMPLETE, ERROR or CANCELED. At each change the same EventBridge
//! event MediaConvert emits ("MediaConvert Job State Change", detail as AWS shapes it, including
//! `outputGroupDetails` with `outputFilePaths` / `playlistFilePaths` on COMPLETE and
//! `errorCode` / `errorMessage` on ERROR) is put on the local stack's default bus, so the
//! template's rule runs the results function exactly as on AWS. One difference: EventBridge
//! refuses `aws.*` sources from PutEvents (AWS and the emulator alike), so the events carry the
//! stack's `MediaConvertEventSource` (a template parameter the local deploy sets).
//!
//! Settings are read by [`settings`] and classified by one [`table`]: what is honoured is mapped
//! to ffmpeg (one run per output group, the input decoded once); what has no meaning for a
//! local run is accepted and listed in the job's `messages.warning` and `warnings`; anything
//! else fails the job with error code 1030 and a message naming the setting. Other error codes used: 1010 (input cannot be read or is not a video),
//! 1401 (an output cannot be written), 1999 (ffmpeg failed). Job state lives in memory: a
//! restart of `local-services` forgets its jobs, as a fresh account would have none.

pub mod audio;
mod reader;
mod render;
pub mod settings;
pub mod table;
pub mod templates;
pub mod video;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use shared::ffmpeg::{Deadline, Supervised};
use shared::ProcessingError;
use tokio::sync::{watch, OnceCell, Semaphore};

use self::settings::{GroupKind, Source};
use super::{read_body, Body, ResponseFuture};
use stack_clients::Clients;

/// EventBridge detail type of MediaConvert's job events.
pub const DETAIL_TYPE: &str = "MediaConvert Job State Change";
/// The source used when the stack outputs do not name one.
pub const DEFAULT_EVENT_SOURCE: &str = "devstack.mediaconvert";
/// The local stack's account (the emulator's default).
const ACCOUNT_ID: &str = "000000000000";
/// Jobs transcoding at once; each ffmpeg already uses every core.
const CONCURRENT_JOBS: usize = 2;
/// A job still transcoding after this long is failed (ffmpeg is killed).
const JOB_DEADLINE: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Submitted,
    Progressing,
    Complete,
    Error,
    Canceled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "SUBMITTED",
            Status::Progressing => "PROGRESSING",
            Status::Complete => "COMPLETE",
            Status::Error => "ERROR",
            Status::Canceled => "CANCELED",
        }
    }

    fn is_final(self) -> bool {
        matches!(self, Status::Complete | Status::Error | Status::Canceled)
    }
}

struct JobRecord {
    id: String,
    arn: String,
    /// The CreateJob body as received.
    request: Value,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    status: Status,
    phase: Option<&'static str>,
    percent: Option<u32>,
    error_code: Option<i64>,
    error_message: Option<String>,
    /// As the COMPLETE event carries them (with file paths).
    output_group_details: Vec<Value>,
    /// Settings accepted without local effect (`Path = value`), once the job is planned.
    accepted: Vec<String>,
    cancel: watch::Sender<bool>,
}

impl JobRecord {
    /// The job as the API answers it (the `Job` shape).
    fn api_json(&self) -> Value {
        let mut job = json!({
            "id": self.id,
            "arn": self.arn,
            "createdAt": self.created_at,
            "status": self.status.as_str(),
            "role": self.request.get("role").cloned().unwrap_or(Value::Null),
            "settings": self.request.get("settings").cloned().unwrap_or(json!({})),
            "userMetadata": self.request.get("userMetadata").cloned().unwrap_or(json!({})),
            "timing": {"submitTime": self.created_at},
        });
        let fields = job.as_object_mut().expect("an object");
        for key in [
            "queue",
            "clientRequestToken",
            "statusUpdateInterval",
            "priority",
            "accelerationSettings",
            "billingTagsSource",
            "jobTemplate",
        ] {
            if let Some(value) = self.request.get(key) {
                fields.insert(key.into(), value.clone());
            }
        }
        if let Some(percent) = self.percent {
            fields.insert("jobPercentComplete".into(), percent.into());
        }
        if let Some(phase) = self.phase {
            fields.insert("currentPhase".into(), phase.into());
        }
        if let Some(code) = self.error_code {
            fields.insert("errorCode".into(), code.into());
        }
        if let Some(message) = &self.error_message {
            fields.insert("errorMessage".into(), message.clone().into());
        }
        if !self.accepted.is_empty() {
            fields.insert(
                "messages".into(),
                json!({"info": [], "warning": accepted_messages(&self.accepted)}),
            );
            fields.insert("warnings".into(), warning_groups(&self.accepted));
        }
        if let Some(started) = self.started_at {
            job["timing"]["startTime"] = started.into();
        }
        if let Some(finished) = self.finished_at {
            job["timing"]["finishTime"] = finished.into();
        }
        if !self.output_group_details.is_empty() {
            // The API's OutputDetail has durations and video sizes; the file paths are the event's.
            let details: Vec<Value> = self
                .output_group_details
                .iter()
                .map(|group| {
                    let outputs: Vec<Value> = group["outputDetails"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|o| json!({"durationInMs": o["durationInMs"], "videoDetails": o["videoDetails"]}))
                        .collect();
                    json!({ "outputDetails": outputs })
                })
                .collect();
            job["outputGroupDetails"] = details.into();
        }
        job
    }
}

/// The warning code the local MediaConvert reports for settings it accepted without local
/// effect (MediaConvert's own codes are 6-digit numbers starting 23; this one is its own).
pub const ACCEPTED_WITHOUT_LOCAL_EFFECT: i64 = 990_001;

/// The job's `messages.warning`: one line per setting accepted without local effect.
fn accepted_messages(accepted: &[String]) -> Vec<String> {
    accepted
        .iter()
        .map(|setting| format!("Accepted without local effect: {setting}"))
        .collect()
}

/// The job's `warnings` (MediaConvert's `WarningGroup`s: a code and how often it occurred).
fn warning_groups(accepted: &[String]) -> Value {
    if accepted.is_empty() {
        json!([])
    } else {
        json!([{"code": ACCEPTED_WITHOUT_LOCAL_EFFECT, "count": accepted.len()}])
    }
}

#[derive(Default)]
struct State {
    jobs: Vec<JobRecord>,
    /// Job templates and presets as the API answers them (`JobTemplate` / `Preset` shapes), in
    /// the order they were created.
    templates: Vec<Value>,
    presets: Vec<Value>,
    /// ClientRequestToken → job id: a repeated CreateJob answers the job it already made.
    tokens: HashMap<String, String>,
}

struct Inner {
    port: u16,
    region: String,
    state: Mutex<State>,
    clients: OnceCell<Clients>,
    slots: Semaphore,
    work_dir: PathBuf,
}

/// The service; cheap to clone (shared state).
#[derive(Clone)]
pub struct LocalMediaConvert {
    inner: Arc<Inner>,
}

/// Why a job did not complete.
#[derive(Debug)]
struct JobFailure {
    code: i64,
    message: String,
}

impl JobFailure {
    fn new(code: i64, message: impl Into<String>) -> Self {
        JobFailure {
            code,
            message: message.into(),
        }
    }
}

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn now_secs() -> i64 {
    since_epoch().as_secs() as i64
}

fn now_millis() -> u128 {
    since_epoch().as_millis()
}

/// MediaConvert's id shape: creation time in ms, a dash, six lowercase characters.
fn new_job_id(sequence: usize) -> String {
    let nanos = since_epoch().as_nanos();
    let mut seed = (nanos as u64) ^ ((sequence as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let suffix: String = (0..6)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (b'a' + ((seed >> 33) % 26) as u8) as char
        })
        .collect();
    format!("{}-{suffix}", now_millis())
}

/// The service's error shape, with the error type the SDK reads from `x-amzn-ErrorType`.
fn api_error(status: StatusCode, kind: &'static str, message: impl std::fmt::Display) -> Response<Body> {
    let mut response = super::error(status, message);
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

fn api_json(status: StatusCode, value: &Value) -> Response<Body> {
    super::json(status, value)
}

/// The content type an output is stored with: what the CloudFront stand-in serves it as.
fn content_type_of(name: &str) -> &'static str {
    super::origin::content_type_for(name).unwrap_or("application/octet-stream")
}

impl LocalMediaConvert {
    pub fn new(port: u16) -> Self {
        LocalMediaConvert {
            inner: Arc::new(Inner {
                port,
                region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
                state: Mutex::new(State::default()),
                clients: OnceCell::new(),
                slots: Semaphore::new(CONCURRENT_JOBS),
                work_dir: std::env::temp_dir(),
            }),
        }
    }

    pub fn handle(&self, request: Request<Incoming>) -> ResponseFuture {
        let service = self.clone();
        Box::pin(async move { service.route(request).await })
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().trim_end_matches('/').to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match (&method, segments.as_slice()) {
            (&Method::POST, ["2017-08-29", "endpoints"]) => self.describe_endpoints(),
            (&Method::POST, ["2017-08-29", "jobs"]) => match read_body(request).await {
                Ok(body) => self.create_job(&body),
                Err(e) => api_error(StatusCode::BAD_REQUEST, "BadRequestException", e),
            },
            (&Method::GET, ["2017-08-29", "jobs"]) => self.list_jobs(&query),
            (&Method::GET, ["2017-08-29", "jobs", id]) => self.get_job(id),
            (&Method::DELETE, ["2017-08-29", "jobs", id]) => self.cancel_job(id),
            (&Method::POST, ["2017-08-29", kind @ ("jobTemplates" | "presets")]) => {
                let kind = Catalogue::of(kind);
                match read_body(request).await {
                    Ok(body) => self.create_named(kind, &body),
                    Err(e) => api_error(StatusCode::BAD_REQUEST, "BadRequestException", e),
                }
            }
            (&Method::GET, ["2017-08-29", kind @ ("jobTemplates" | "presets")]) => {
                self.list_named(Catalogue::of(kind), &query)
            }
            (&Method::GET, ["2017-08-29", kind @ ("jobTemplates" | "presets"), name]) => {
                self.get_named(Catalogue::of(kind), &decode(name))
            }
            _ => api_error(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                format!("{method} {path} is not implemented by the local MediaConvert"),
            ),
        }
    }

    /// CreateJobTemplate / CreatePreset: stored as the API answers them.
    fn create_named(&self, kind: Catalogue, body: &[u8]) -> Response<Body> {
        let request: Map<String, Value> = match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => map,
            _ => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequestException",
                    "the body is not a JSON object",
                )
            }
        };
        let Some(name) = request.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
            return api_error(StatusCode::BAD_REQUEST, "BadRequestException", "name is required");
        };
        if !request.get("settings").is_some_and(Value::is_object) {
            return api_error(StatusCode::BAD_REQUEST, "BadRequestException", "settings is required");
        }
        let mut state = self.inner.state.lock().unwrap();
        let stored = kind.list_mut(&mut state);
        if stored.iter().any(|t| t["name"] == name) {
            return api_error(
                StatusCode::CONFLICT,
                "ConflictException",
                format!("A {} named {name} already exists", kind.singular()),
            );
        }
        let mut record = request.clone();
        let now = now_secs();
        record.insert(
            "arn".into(),
            format!(
                "arn:aws:mediaconvert:{}:{ACCOUNT_ID}:{}/{name}",
                self.inner.region,
                kind.path()
            )
            .into(),
        );
        record.insert("createdAt".into(), now.into());
        record.insert("lastUpdated".into(), now.into());
        record.insert("type".into(), "CUSTOM".into());
        record.remove("tags");
        let record = Value::Object(record);
        stored.push(record.clone());
        tracing::info!(kind = kind.singular(), name, "created");
        api_json(StatusCode::CREATED, &json!({ kind.singular(): record }))
    }

    fn get_named(&self, kind: Catalogue, name: &str) -> Response<Body> {
        let mut state = self.inner.state.lock().unwrap();
        match kind
            .list_mut(&mut state)
            .iter()
            .find(|t| t["name"] == name || t["arn"] == name)
        {
            Some(found) => api_json(StatusCode::OK, &json!({ kind.singular(): found })),
            None => api_error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                format!("The {} {name} was not found", kind.singular()),
            ),
        }
    }

    /// ListJobTemplates / ListPresets: `category`, `listBy` (NAME, CREATION_DATE), `order`,
    /// `maxResults` (1–20) and `nextToken`.
    fn list_named(&self, kind: Catalogue, query: &str) -> Response<Body> {
        let params = query_params(query);
        let (max_results, offset) = page_of(&params);
        let mut state = self.inner.state.lock().unwrap();
        let mut found: Vec<&Value> = kind
            .list_mut(&mut state)
            .iter()
            .filter(|t| params.get("category").is_none_or(|c| t["category"] == c.as_str()))
            .collect();
        if params.get("listBy").map(String::as_str) != Some("CREATION_DATE") {
            found.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        }
        if params.get("order").map(String::as_str) == Some("DESCENDING") {
            found.reverse();
        }
        let page: Vec<Value> = found
            .iter()
            .skip(offset)
            .take(max_results)
            .map(|t| (*t).clone())
            .collect();
        let mut answer = json!({ kind.plural(): page });
        if offset + max_results < found.len() {
            answer["nextToken"] = (offset + max_results).to_string().into();
        }
        api_json(StatusCode::OK, &answer)
    }

    /// The CreateJob body with its `JobTemplate` and its outputs' `Preset`s applied.
    fn resolve(&self, request: Value) -> Result<Value, String> {
        let state = self.inner.state.lock().unwrap();
        let mut job = match request.get("jobTemplate").and_then(Value::as_str) {
            None => request.clone(),
            Some(name) => {
                let template = state
                    .templates
                    .iter()
                    .find(|t| t["name"] == name || t["arn"] == name)
                    .ok_or_else(|| format!("JobTemplate: the job template {name} does not exist"))?;
                templates::apply_template(&request, template)
            }
        };
        templates::apply_presets(&mut job, |name| {
            state
                .presets
                .iter()
                .find(|p| p["name"] == name || p["arn"] == name)
                .map(|p| p["settings"].clone())
        })
        .map_err(|unresolved| unresolved.0)?;
        Ok(job)
    }

    fn describe_endpoints(&self) -> Response<Body> {
        let url = super::url(self.inner.port);
        api_json(StatusCode::OK, &json!({ "endpoints": [{ "url": url }] }))
    }

    fn create_job(&self, body: &[u8]) -> Response<Body> {
        let request: Value = match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Value::Object(map),
            _ => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequestException",
                    "the body is not a JSON object",
                )
            }
        };
        let request = match self.resolve(request) {
            Ok(request) => request,
            Err(message) => return api_error(StatusCode::BAD_REQUEST, "BadRequestException", message),
        };
        // What the API itself requires; everything else is judged when the job runs.
        for required in ["role", "settings"] {
            if request.get(required).is_none() {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequestException",
                    format!("{required} is required"),
                );
            }
        }
        let token = request
            .get("clientRequestToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (job, id, cancel) = {
            let mut state = self.inner.state.lock().unwrap();
            if let Some(existing) = token.as_ref().and_then(|t| state.tokens.get(t)) {
                let id = existing.clone();
                let job = state.jobs.iter().find(|j| j.id == id).map(JobRecord::api_json);
                tracing::info!(job_id = %id, "CreateJob with a known ClientRequestToken: the existing job");
                return api_json(StatusCode::CREATED, &json!({ "job": job }));
            }
            let id = new_job_id(state.jobs.len());
            let (cancel, cancel_rx) = watch::channel(false);
            let record = JobRecord {
                arn: format!("arn:aws:mediaconvert:{}:{ACCOUNT_ID}:jobs/{id}", self.inner.region),
                id: id.clone(),
                request,
                created_at: now_secs(),
                started_at: None,
                finished_at: None,
                status: Status::Submitted,
                phase: None,
                percent: None,
                error_code: None,
                error_message: None,
                output_group_details: Vec::new(),
                accepted: Vec::new(),
                cancel,
            };
            let job = record.api_json();
            if let Some(token) = token {
                state.tokens.insert(token, id.clone());
            }
            state.jobs.push(record);
            (job, id, cancel_rx)
        };
        tracing::info!(job_id = %id, "job submitted");
        let service = self.clone();
        tokio::spawn(async move { service.run(id, cancel).await });
        api_json(StatusCode::CREATED, &json!({ "job": job }))
    }

    fn get_job(&self, id: &str) -> Response<Body> {
        let state = self.inner.state.lock().unwrap();
        match state.jobs.iter().find(|j| j.id == id) {
            Some(job) => api_json(StatusCode::OK, &json!({ "job": job.api_json() })),
            None => api_error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                format!("The job {id} was not found"),
            ),
        }
    }

    fn list_jobs(&self, query: &str) -> Response<Body> {
        let params = query_params(query);
        let (max_results, offset) = page_of(&params);
        let state = self.inner.state.lock().unwrap();
        let mut jobs: Vec<&JobRecord> = state
            .jobs
            .iter()
            .filter(|j| params.get("status").is_none_or(|s| s == j.status.as_str()))
            .filter(|j| {
                params
                    .get("queue")
                    .is_none_or(|q| j.request.get("queue").and_then(Value::as_str) == Some(q.as_str()))
            })
            .collect();
        if params.get("order").map(String::as_str) != Some("ASCENDING") {
            jobs.reverse();
        }
        let page: Vec<Value> = jobs
            .iter()
            .skip(offset)
            .take(max_results)
            .map(|j| j.api_json())
            .collect();
        let mut answer = json!({ "jobs": page });
        if offset + max_results < jobs.len() {
            answer["nextToken"] = (offset + max_results).to_string().into();
        }
        api_json(StatusCode::OK, &answer)
    }

    fn cancel_job(&self, id: &str) -> Response<Body> {
        let state = self.inner.state.lock().unwrap();
        match state.jobs.iter().find(|j| j.id == id) {
            None => api_error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                format!("The job {id} was not found"),
            ),
            Some(job) if job.status.is_final() => api_error(
                StatusCode::CONFLICT,
                "ConflictException",
                format!("The job {id} is {} and can no longer be canceled", job.status.as_str()),
            ),
            Some(job) => {
                let _ = job.cancel.send(true);
                tracing::info!(job_id = %id, "cancel requested");
                api_json(StatusCode::ACCEPTED, &json!({}))
            }
        }
    }

    async fn clients(&self) -> &Clients {
        self.inner.clients.get_or_init(Clients::from_env).await
    }

    /// Applies `change` to the job (under the lock) and returns what it returns; `None` when
    /// there is no such job.
    fn update<T>(&self, id: &str, change: impl FnOnce(&mut JobRecord) -> T) -> Option<T> {
        let mut state = self.inner.state.lock().unwrap();
        let job = state.jobs.iter_mut().find(|j| j.id == id)?;
        Some(change(job))
    }

    /// Runs one job to its end, emitting an event at each state change.
    async fn run(&self, id: String, mut cancel: watch::Receiver<bool>) {
        let permit = tokio::select! {
            permit = self.inner.slots.acquire() => Some(permit.expect("the semaphore is never closed")),
            _ = cancel.wait_for(|c| *c) => None,
        };
        let Some(permit) = permit else {
            self.finish(&id, Status::Canceled, None).await;
            return;
        };
        let Some(request) = self.update(&id, |job| {
            job.status = Status::Progressing;
            job.started_at = Some(now_secs());
            job.phase = Some("PROBING");
            job.percent = Some(0);
            job.request.clone()
        }) else {
            return;
        };
        self.emit(&id, json!({})).await;
        let outcome = tokio::select! {
            outcome = self.execute(&id, &request) => Some(outcome),
            _ = cancel.wait_for(|c| *c) => None,
        };
        drop(permit);
        match outcome {
            None => self.finish(&id, Status::Canceled, None).await,
            Some(Ok(details)) => {
                self.update(&id, |job| job.output_group_details = details);
                self.finish(&id, Status::Complete, None).await
            }
            Some(Err(failure)) => self.finish(&id, Status::Error, Some(failure)).await,
        }
    }

    async fn finish(&self, id: &str, status: Status, failure: Option<JobFailure>) {
        let mut extra = json!({});
        self.update(id, |job| {
            job.status = status;
            job.finished_at = Some(now_secs());
            job.phase = None;
            match &failure {
                Some(failure) => {
                    job.error_code = Some(failure.code);
                    job.error_message = Some(failure.message.clone());
                    extra = json!({"errorCode": failure.code, "errorMessage": failure.message});
                }
                None if status == Status::Complete => {
                    job.percent = Some(100);
                    extra = json!({"outputGroupDetails": job.output_group_details, "warnings": warning_groups(&job.accepted)});
                }
                None => {}
            }
        });
        match &failure {
            Some(failure) => {
                tracing::warn!(job_id = %id, code = failure.code, message = %failure.message, "job failed")
            }
            None => tracing::info!(job_id = %id, status = status.as_str(), "job finished"),
        }
        self.emit(id, extra).await;
    }

    /// Puts the job's state-change event on the local default bus.
    async fn emit(&self, id: &str, extra: Value) {
        let snapshot = {
            let state = self.inner.state.lock().unwrap();
            state.jobs.iter().find(|j| j.id == id).map(|job| {
                (
                    job.arn.clone(),
                    job.status,
                    job.request.get("queue").cloned().unwrap_or(Value::Null),
                    job.request.get("userMetadata").cloned().unwrap_or(json!({})),
                    job.percent,
                    job.phase,
                )
            })
        };
        let Some((arn, status, queue, user_metadata, percent, phase)) = snapshot else {
            return;
        };
        let mut detail = json!({
            "timestamp": now_millis() as u64,
            "accountId": ACCOUNT_ID,
            "queue": queue,
            "jobId": id,
            "status": status.as_str(),
            "userMetadata": user_metadata,
        });
        if status == Status::Progressing && extra.get("jobProgress").is_none() && percent.unwrap_or(0) > 0 {
            detail["status"] = "STATUS_UPDATE".into();
            detail["jobProgress"] = json!({"jobPercentComplete": percent, "currentPhase": phase, "retryCount": 0});
        }
        if let (Value::Object(detail), Value::Object(extra)) = (&mut detail, extra) {
            detail.extend(extra);
        }
        // `MEDIACONVERT_EVENT_SOURCE`: the source the stack's rule listens to (its
        // `MediaConvertEventSource` output), set by `stack.sh`.
        let source = std::env::var("MEDIACONVERT_EVENT_SOURCE")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_owned());
        let entry = PutEventsRequestEntry::builder()
            .source(source)
            .detail_type(DETAIL_TYPE)
            .detail(detail.to_string())
            .resources(arn)
            .build();
        let events = &self.clients().await.events;
        for attempt in 1..=3 {
            match events.put_events().entries(entry.clone()).send().await {
                Ok(out) if out.failed_entry_count() == 0 => return,
                Ok(out) => {
                    tracing::error!(job_id = %id, attempt, entries = ?out.entries(), "PutEvents refused the event")
                }
                Err(err) => {
                    tracing::error!(job_id = %id, attempt, error = %shared::error::DisplayErrorChain(&err), "PutEvents failed")
                }
            }
            tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
        }
    }

    /// Probe, transcode each output group, upload. Returns the COMPLETE event's group details.
    async fn execute(&self, id: &str, request: &Value) -> Result<Vec<Value>, JobFailure> {
        let plan = settings::plan(request).map_err(|refused| JobFailure::new(1030, refused.to_string()))?;
        if !plan.accepted.is_empty() {
            tracing::info!(job_id = %id, accepted = ?plan.accepted, "settings accepted without local effect");
        }
        self.update(id, |job| job.accepted = plan.accepted.clone());
        let workspace = tempfile::Builder::new()
            .prefix("local-mediaconvert-")
            .tempdir_in(&self.inner.work_dir)
            .map_err(|e| JobFailure::new(1999, format!("local work directory: {e}")))?;
        let input_uri = format!("s3://{}/{}", plan.input_bucket, plan.input_key);
        let unreadable = |e: ProcessingError| {
            JobFailure::new(1010, format!("Unable to open input file [{input_uri}]: {}", e.reason))
        };
        let input = workspace.path().join("input");
        let clients = self.clients().await;
        shared::storage::download_to_file(&clients.s3, &plan.input_bucket, &plan.input_key, &input)
            .await
            .map_err(unreadable)?;
        let info = shared::probe::probe_source(
            Path::new("ffprobe"),
            &input,
            Deadline::after(Duration::from_secs(60)),
            shared::probe::Unreadable::CORRUPT_FILE,
        )
        .await
        .map_err(unreadable)?;
        let video = info.require_video().map_err(unreadable)?;
        let (width, height) = plan.source_size((video.width, video.height), video.display_size());
        let source = Source {
            width,
            height,
            has_audio: info.audio.is_some(),
            fps: video.fps.filter(|f| *f > 0.0).unwrap_or(30.0),
        };
        let duration = info.duration_secs.unwrap_or(0.0);
        let interval = status_update_interval(request);
        let deadline = Deadline::after(JOB_DEADLINE);

        let mut details = Vec::new();
        let groups = plan.groups.len();
        for (index, group) in plan.groups.iter().enumerate() {
            let dir = workspace.path().join(format!("group-{index}"));
            std::fs::create_dir_all(&dir).map_err(|e| JobFailure::new(1999, format!("local work directory: {e}")))?;
            let base = group.base_name(&plan.input_key);
            let (args, files) = group.ffmpeg_args(&input, &source, &dir, &base);
            self.update(id, |job| job.phase = Some("TRANSCODING"));
            let mut last_update = tokio::time::Instant::now();
            let service = self.clone();
            let job_id = id.to_owned();
            Supervised::new("ffmpeg", deadline)
                .args(args)
                .on_progress(move |progress| {
                    let fraction = if duration > 0.0 {
                        (progress.out_time.as_secs_f64() / duration).min(1.0)
                    } else {
                        0.0
                    };
                    let percent = (5.0 + 90.0 * (index as f64 + fraction) / groups as f64) as u32;
                    service.update(&job_id, |job| job.percent = Some(percent));
                    if last_update.elapsed() >= interval {
                        last_update = tokio::time::Instant::now();
                        let service = service.clone();
                        let job_id = job_id.clone();
                        tokio::spawn(async move { service.emit(&job_id, json!({})).await });
                    }
                })
                .run()
                .await
                .map_err(|e| JobFailure::new(1999, format!("Transcoding failed: {e}")))?;
            self.update(id, |job| job.phase = Some("UPLOADING"));
            details.push(self.upload_group(group, &dir, &files, &source, duration).await?);
        }
        Ok(details)
    }

    async fn upload_group(
        &self,
        group: &settings::GroupPlan,
        dir: &Path,
        files: &[settings::WrittenFile],
        source: &Source,
        duration: f64,
    ) -> Result<Value, JobFailure> {
        let s3 = &self.clients().await.s3;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| JobFailure::new(1999, format!("reading the outputs: {e}")))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in &names {
            let key = format!("{}{name}", group.prefix);
            let options = shared::storage::UploadOptions {
                content_type: Some(content_type_of(name).to_owned()),
                metadata: Vec::new(),
            };
            shared::storage::upload_file(s3, &dir.join(name), &group.bucket, &key, &options)
                .await
                .map_err(|e| {
                    JobFailure::new(
                        1401,
                        format!(
                            "Unable to write to output file [s3://{}/{key}]: {}",
                            group.bucket, e.reason
                        ),
                    )
                })?;
        }
        // What was written, not what was asked for: the MP4s of a file group are probed.
        let mut probed = HashMap::new();
        for file in files.iter().filter(|f| f.output.is_some() && !f.captures) {
            if group.kind != GroupKind::File {
                continue;
            }
            let info = shared::probe::probe_file(
                Path::new("ffprobe"),
                &dir.join(&file.name),
                Deadline::after(Duration::from_secs(60)),
            )
            .await
            .map_err(|e| JobFailure::new(1999, format!("the output {} is unreadable: {}", file.name, e.reason)))?;
            probed.insert(
                file.name.clone(),
                Written {
                    size: info.video.as_ref().map(|v| v.display_size()),
                    duration_secs: info.duration_secs,
                },
            );
        }
        Ok(group_detail(group, files, &names, &probed, source, duration))
    }
}

/// An output file as ffprobe saw it.
#[derive(Debug, Clone, Copy, Default)]
struct Written {
    size: Option<(u32, u32)>,
    duration_secs: Option<f64>,
}

/// The COMPLETE event's detail of one group: its outputs' files and sizes, and for streaming
/// groups the manifests. `names` are the files the run wrote; `probed` what ffprobe saw of some.
fn group_detail(
    group: &settings::GroupPlan,
    files: &[settings::WrittenFile],
    names: &[String],
    probed: &HashMap<String, Written>,
    source: &Source,
    duration: f64,
) -> Value {
    let uri = |name: &str| format!("s3://{}/{}{name}", group.bucket, group.prefix);
    let mut output_details = Vec::new();
    for file in files {
        let Some(index) = file.output else { continue };
        let Some(plan_video) = group.outputs[index].video.as_ref() else {
            // An audio-only output (DASH, CMAF): no video details.
            output_details.push(json!({
                "outputFilePaths": [uri(&file.name)],
                "durationInMs": (duration * 1000.0).round() as u64,
            }));
            continue;
        };
        let (mut width, mut height) = plan_video.output_size(source);
        let mut duration_ms = (duration * 1000.0).round() as u64;
        if file.captures {
            // `<name>.0000000.jpg`, ...: the numbered stills of this output only.
            let stills: Vec<String> = names
                .iter()
                .filter(|name| {
                    name.strip_prefix(&file.name).is_some_and(|rest| {
                        rest.len() > 8 && rest[..7].bytes().all(|b| b.is_ascii_digit()) && &rest[7..8] == "."
                    })
                })
                .map(|name| uri(name))
                .collect();
            output_details.push(json!({
                "outputFilePaths": stills,
                "durationInMs": duration_ms,
                "videoDetails": {"widthInPx": width, "heightInPx": height},
            }));
            continue;
        }
        if let Some(written) = probed.get(&file.name) {
            if let Some(size) = written.size {
                (width, height) = size;
            }
            duration_ms = (written.duration_secs.unwrap_or(duration) * 1000.0).round() as u64;
        }
        output_details.push(json!({
            "outputFilePaths": [uri(&file.name)],
            "durationInMs": duration_ms,
            "videoDetails": {"widthInPx": width, "heightInPx": height},
        }));
    }
    let mut detail = json!({
        "outputDetails": output_details,
        "type": match &group.kind {
            GroupKind::File => "FILE_GROUP",
            GroupKind::Hls { .. } => "HLS_GROUP",
            GroupKind::Dash(dash) if dash.cmaf => "CMAF_GROUP",
            GroupKind::Dash(_) => "DASH_ISO_GROUP",
        },
    });
    if group.kind != GroupKind::File {
        let masters: Vec<String> = files
            .iter()
            .filter(|f| f.output.is_none())
            .map(|f| uri(&f.name))
            .collect();
        detail["playlistFilePaths"] = masters.into();
    }
    detail
}

/// A percent-encoded path segment or query value.
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// A List call's page: `maxResults` (1–20, default 20) and the offset its `nextToken` carries.
fn page_of(params: &HashMap<String, String>) -> (usize, usize) {
    let max_results = params
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(20)
        .clamp(1, 20);
    let offset = params.get("nextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    (max_results, offset)
}

fn query_params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(&v.replace('+', " "))))
        .collect()
}

/// The two named catalogues the API keeps: job templates and output presets.
#[derive(Debug, Clone, Copy)]
enum Catalogue {
    JobTemplates,
    Presets,
}

impl Catalogue {
    fn of(path: &str) -> Self {
        if path == "presets" {
            Catalogue::Presets
        } else {
            Catalogue::JobTemplates
        }
    }

    fn path(self) -> &'static str {
        match self {
            Catalogue::JobTemplates => "jobTemplates",
            Catalogue::Presets => "presets",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Catalogue::JobTemplates => "jobTemplate",
            Catalogue::Presets => "preset",
        }
    }

    fn plural(self) -> &'static str {
        self.path()
    }

    fn list_mut(self, state: &mut State) -> &mut Vec<Value> {
        match self {
            Catalogue::JobTemplates => &mut state.templates,
            Catalogue::Presets => &mut state.presets,
        }
    }
}

/// `statusUpdateInterval` (`SECONDS_60` when unset, as MediaConvert).
fn status_update_interval(request: &Value) -> Duration {
    let seconds = request
        .get("statusUpdateInterval")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix("SECONDS_"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_look_like_mediaconvert_ids_and_differ() {
        let a = new_job_id(0);
        let b = new_job_id(1);
        assert_ne!(a, b);
        let (millis, suffix) = a.split_once('-').unwrap();
        assert!(millis.parse::<u128>().is_ok());
        assert!(
            suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_lowercase()),
            "{a}"
        );
    }

    #[test]
    fn the_api_job_carries_state_and_drops_event_only_paths() {
        let (cancel, _) = watch::channel(false);
        let job = JobRecord {
            id: "1-abcdef".into(),
            arn: "arn:aws:mediaconvert:us-east-1:000000000000:jobs/1-abcdef".into(),
            request: json!({"role": "r", "queue": "q", "settings": {"inputs": []}, "clientRequestToken": "t"}),
            created_at: 10,
            started_at: Some(11),
            finished_at: None,
            status: Status::Progressing,
            phase: Some("TRANSCODING"),
            percent: Some(42),
            error_code: None,
            error_message: None,
            output_group_details: vec![json!({"type": "FILE_GROUP", "outputDetails": [
                {"outputFilePaths": ["s3://b/k.mp4"], "durationInMs": 1000, "videoDetails": {"widthInPx": 2, "heightInPx": 2}}]})],
            accepted: vec!["Priority = 0".into()],
            cancel,
        };
        let api = job.api_json();
        assert_eq!(api["status"], "PROGRESSING");
        assert_eq!(api["jobPercentComplete"], 42);
        assert_eq!(api["currentPhase"], "TRANSCODING");
        assert_eq!(api["timing"], json!({"submitTime": 10, "startTime": 11}));
        assert_eq!(api["clientRequestToken"], "t");
        assert_eq!(
            api["outputGroupDetails"],
            json!([{"outputDetails": [{"durationInMs": 1000, "videoDetails": {"widthInPx": 2, "heightInPx": 2}}]}])
        );
        assert_eq!(
            api["messages"]["warning"],
            json!(["Accepted without local effect: Priority = 0"])
        );
        assert_eq!(
            api["warnings"],
            json!([{"code": ACCEPTED_WITHOUT_LOCAL_EFFECT, "count": 1}])
        );
    }

    fn planned(job: Value) -> settings::GroupPlan {
        settings::plan(&settings::console_to_wire(&job))
            .unwrap()
            .groups
            .remove(0)
    }

    const SOURCE: Source = Source {
        width: 640,
        height: 360,
        has_audio: true,
        fps: 25.0,
    };

    #[test]
    fn a_file_group_reports_what_was_written_and_each_thumbnail() {
        let group = planned(json!({"Role": "r", "Settings": {
            "Inputs": [{"FileInput": "s3://src/in/clip.mp4", "AudioSelectors": {"Audio Selector 1": {}}}],
            "OutputGroups": [{"OutputGroupSettings": {"Type": "FILE_GROUP_SETTINGS",
                "FileGroupSettings": {"Destination": "s3://out/mc/"}},
              "Outputs": [
                {"NameModifier": "_hd", "ContainerSettings": {"Container": "MP4"},
                 "VideoDescription": {"Width": 1280, "Height": 720, "CodecSettings": {"Codec": "H_264",
                    "H264Settings": {"RateControlMode": "QVBR"}}}},
                {"NameModifier": "_t", "ContainerSettings": {"Container": "RAW"},
                 "VideoDescription": {"Width": 320, "Height": 180, "CodecSettings": {"Codec": "FRAME_CAPTURE",
                    "FrameCaptureSettings": {"MaxCaptures": 2}}}}]}]}}));
        let (_, files) = group.ffmpeg_args(Path::new("in"), &SOURCE, Path::new("/w"), "clip");
        let names: Vec<String> = ["clip_hd.mp4", "clip_t.0000000.jpg", "clip_t.0000001.jpg", "clip_t.mp4x"]
            .map(String::from)
            .to_vec();
        let probed = HashMap::from([(
            "clip_hd.mp4".to_owned(),
            Written {
                size: Some((1280, 718)),
                duration_secs: Some(2.5),
            },
        )]);
        let detail = group_detail(&group, &files, &names, &probed, &SOURCE, 3.0);
        assert_eq!(detail["type"], "FILE_GROUP");
        assert_eq!(detail.get("playlistFilePaths"), None);
        assert_eq!(
            detail["outputDetails"],
            json!([
                {"outputFilePaths": ["s3://out/mc/clip_hd.mp4"], "durationInMs": 2500,
                 "videoDetails": {"widthInPx": 1280, "heightInPx": 718}},
                {"outputFilePaths": ["s3://out/mc/clip_t.0000000.jpg", "s3://out/mc/clip_t.0000001.jpg"],
                 "durationInMs": 3000, "videoDetails": {"widthInPx": 320, "heightInPx": 180}}
            ])
        );
    }

    #[test]
    fn a_cmaf_group_reports_its_manifests_and_its_audio_only_output() {
        let group = planned(json!({"Role": "r", "Settings": {
            "Inputs": [{"FileInput": "s3://src/in/clip.mp4", "AudioSelectors": {"Audio Selector 1": {}}}],
            "OutputGroups": [{"OutputGroupSettings": {"Type": "CMAF_GROUP_SETTINGS",
                "CmafGroupSettings": {"Destination": "s3://out/cmaf/", "SegmentLength": 2}},
              "Outputs": [
                {"NameModifier": "_v", "ContainerSettings": {"Container": "CMFC"},
                 "VideoDescription": {"Height": 180, "CodecSettings": {"Codec": "H_264",
                    "H264Settings": {"RateControlMode": "QVBR"}}}},
                {"NameModifier": "_a", "ContainerSettings": {"Container": "CMFC"},
                 "AudioDescriptions": [{"CodecSettings": {"Codec": "AAC", "AacSettings": {"Bitrate": 96000}}}]}]}]}}));
        let (_, files) = group.ffmpeg_args(Path::new("in"), &SOURCE, Path::new("/w"), "clip");
        let detail = group_detail(&group, &files, &[], &HashMap::new(), &SOURCE, 4.0);
        assert_eq!(detail["type"], "CMAF_GROUP");
        assert_eq!(
            detail["playlistFilePaths"],
            json!(["s3://out/cmaf/clip.mpd", "s3://out/cmaf/clip.m3u8"])
        );
        assert_eq!(
            detail["outputDetails"],
            json!([
                {"outputFilePaths": ["s3://out/cmaf/clip.mpd"], "durationInMs": 4000,
                 "videoDetails": {"widthInPx": 320, "heightInPx": 180}},
                {"outputFilePaths": ["s3://out/cmaf/clip.mpd"], "durationInMs": 4000}
            ])
        );
    }

    #[test]
    fn intervals_and_content_types() {
        assert_eq!(
            status_update_interval(&json!({"statusUpdateInterval": "SECONDS_10"})),
            Duration::from_secs(10)
        );
        assert_eq!(status_update_interval(&json!({})), Duration::from_secs(60));
        assert_eq!(content_type_of("a b.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type_of("x_00001.ts"), "video/mp2t");
        assert_eq!(content_type_of("x-hd.mp4"), "video/mp4");
    }
}
