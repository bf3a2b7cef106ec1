//! MediaConvert submitter: S3 `ObjectCreated` under the configured prefix → one MediaConvert
//! `CreateJob` per object, from a job template of `job-templates/mediaconvert/` (seed 001's job
//! by default). The job's end (COMPLETE / ERROR / CANCELED) is answered on the results topic by
//! the `mediaconvert-results` function, which MediaConvert's EventBridge event triggers.
//!
//! * Keys are decoded before they become the job's `FileInput` (the seed's version broke on
//!   spaces because it passed S3's `+` along).
//! * Input, destination, queue and role come from configuration: nothing is cut out of the
//!   function's own ARN, no name is hard-coded.
//! * `ClientRequestToken` is a hash of bucket, key and version id (or ETag when the bucket is not
//!   versioned): a duplicated event finds the job already created instead of starting another.
//! * `UserMetadata` carries the source (bucket, key, ETag), the template name and the pipeline
//!   name, which the EventBridge rule matches so only this deployment's jobs are answered.
//! * The endpoint is the configured one (`MEDIACONVERT_ENDPOINT`), else discovered once with
//!   `DescribeEndpoints` and kept for the life of the process (every later invocation reuses it).
//!
//! Failures: a record that cannot name an object, or names an empty one, is answered with a
//! named rejection on the results topic; a job MediaConvert refuses (`BadRequestException`) is
//! answered as `failed`; anything retrying can fix (throttling, network, 5xx, a missing role or
//! queue) fails the invocation as retryable, so Lambda's asynchronous retries and then the
//! on-failure queue keep the event.
//!
//! Crates: `aws-sdk-mediaconvert` (the official SDK; default features off, only its Tokio runtime
//! and HTTPS client) and `sha2` for the token (RustCrypto, already in the workspace).

pub mod account;
pub mod template;

use std::collections::BTreeMap;

use aws_lambda_events::event::s3::S3EventRecord;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::config::{ConfigError, EnvReader};
use shared::contracts::{Job, ObjectRef, PipelineResult};
use shared::ledger::{s3_rejection_outcome, Ledger};
use shared::s3_event::{self, decode_key, shown_key};
use shared::{Code, ProcessingError};
use tokio::sync::OnceCell;

use template::{Filling, JobTemplate};

pub use shared::contracts::mediaconvert_metadata as metadata;

/// Where the job template named by `MEDIACONVERT_TEMPLATE` comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateSource {
    /// Built into the binary from `job-templates/mediaconvert/` (`hd-sd`, `hls-abr`).
    BuiltIn(JobTemplate),
    /// Any other name: a job template in the account's MediaConvert (see [`account`]), read
    /// with `GetJobTemplate` on first use and named in every job.
    Account,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `MEDIACONVERT_TEMPLATE` (default `hd-sd`): a built-in template of
    /// `job-templates/mediaconvert/`, or the name of a job template in the account.
    pub template_name: String,
    pub template: TemplateSource,
    /// `MEDIACONVERT_QUEUE_ARN`
    pub queue_arn: String,
    /// `MEDIACONVERT_ROLE_ARN`: the role MediaConvert assumes to read the source and write outputs.
    pub role_arn: String,
    /// `OUTPUT_BUCKET`
    pub output_bucket: String,
    /// `OUTPUT_PREFIX` (default `mediaconvert/`)
    pub output_prefix: String,
    /// `SOURCE_PREFIX` (default `mediaconvert-uploads/`): objects elsewhere are skipped (the S3
    /// notification filters on it too; this guards a misconfigured trigger).
    pub source_prefix: String,
    /// `MEDIACONVERT_ENDPOINT`: when unset, discovered with DescribeEndpoints.
    pub endpoint: Option<String>,
    /// `PIPELINE_NAME`: written to every job's metadata; the results rule matches it.
    pub pipeline: String,
    /// `RESULTS_TOPIC_ARN`: where rejections and refused jobs are answered.
    pub results_topic_arn: String,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let template_name: String = env.optional_or("MEDIACONVERT_TEMPLATE", "hd-sd".to_owned());
        let template = match JobTemplate::built_in(&template_name) {
            Some(Ok(template)) => TemplateSource::BuiltIn(template),
            Some(Err(e)) => {
                env.check(false, "MEDIACONVERT_TEMPLATE", &format!("names a broken template: {e}"));
                TemplateSource::Account
            }
            // Any other name is a job template registered in the account's MediaConvert; whether
            // it exists is known at the first job (GetJobTemplate), which says how to register it.
            None => TemplateSource::Account,
        };
        let config = Config {
            template,
            template_name,
            queue_arn: env.required("MEDIACONVERT_QUEUE_ARN"),
            role_arn: env.required("MEDIACONVERT_ROLE_ARN"),
            output_bucket: env.required("OUTPUT_BUCKET"),
            output_prefix: env.optional_or("OUTPUT_PREFIX", "mediaconvert/".to_owned()),
            source_prefix: env.optional_or("SOURCE_PREFIX", "mediaconvert-uploads/".to_owned()),
            endpoint: env.optional("MEDIACONVERT_ENDPOINT"),
            pipeline: env.required("PIPELINE_NAME"),
            results_topic_arn: env.required("RESULTS_TOPIC_ARN"),
        };
        env.finish()?;
        Ok(config)
    }
}

/// The object a record announces.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceObject {
    pub bucket: String,
    /// Decoded.
    pub key: String,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

impl SourceObject {
    /// The idempotency token: the same object version always gives the same token, so a
    /// duplicated notification finds the job it already created.
    pub fn client_request_token(&self) -> String {
        let version = self
            .version_id
            .as_deref()
            .map(|v| format!("version:{v}"))
            .or_else(|| self.etag.as_deref().map(|e| format!("etag:{e}")))
            .unwrap_or_default();
        let mut hasher = Sha256::new();
        // NUL separators: no bucket/key/version split can produce another's bytes.
        for part in [self.bucket.as_str(), self.key.as_str(), version.as_str()] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        hex::encode(hasher.finalize())
    }

    fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            etag: self.etag.clone(),
        }
    }
}

/// What to do with one S3 event record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Submit(SourceObject),
    Reject(Box<PipelineResult>),
    Skip(String),
}

/// Decides one record. Pure: every rule is unit-tested.
pub fn decide(record: &Value, config: &Config) -> Decision {
    let record: S3EventRecord = match serde_json::from_value(record.clone()) {
        Ok(record) => record,
        Err(e) => return reject_malformed(record, config, format!("not an S3 event record: {e}")),
    };
    let event_name = record.event_name.clone().unwrap_or_default();
    if !event_name.starts_with("ObjectCreated:") {
        return Decision::Skip(format!("event {event_name:?} is not an object creation"));
    }
    let (Some(bucket), Some(encoded_key)) = (record.s3.bucket.name.clone(), record.s3.object.key.clone()) else {
        return reject_malformed(&Value::Null, config, "record has no bucket or key".into());
    };
    let source = |key: String| SourceObject {
        bucket: bucket.clone(),
        key,
        etag: record.s3.object.e_tag.clone().filter(|e| !e.is_empty()),
        version_id: record.s3.object.version_id.clone().filter(|v| !v.is_empty()),
    };
    let key = match decode_key(&encoded_key) {
        Ok(key) => key,
        Err(err) => return Decision::Reject(Box::new(rejection(&source(shown_key(&encoded_key)), config, &err))),
    };
    if !key.starts_with(&config.source_prefix) {
        return Decision::Skip(format!("{key:?} is outside {:?}", config.source_prefix));
    }
    if key.ends_with('/') {
        return Decision::Skip(format!("{key:?} is a folder marker"));
    }
    let object = source(key);
    if record.s3.object.size == Some(0) {
        let err = ProcessingError::rejected(Code::EmptyObject, "the object is empty (0 bytes)");
        return Decision::Reject(Box::new(rejection(&object, config, &err)));
    }
    Decision::Submit(object)
}

fn rejection(source: &SourceObject, config: &Config, err: &ProcessingError) -> PipelineResult {
    PipelineResult::from_error(
        Job::Mediaconvert,
        source.object_ref(),
        Some(config.template_name.clone()),
        err,
    )
}

fn reject_malformed(record: &Value, config: &Config, reason: String) -> Decision {
    let text = |pointer: &str| record.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_owned();
    let source = SourceObject {
        bucket: text("/s3/bucket/name"),
        key: text("/s3/object/key"),
        etag: None,
        version_id: None,
    };
    let err = ProcessingError::rejected(Code::MalformedEvent, reason);
    Decision::Reject(Box::new(rejection(&source, config, &err)))
}

impl Config {
    /// The template filled for one object: outputs go to `<prefix><source key's folder>/`, so
    /// `mediaconvert-uploads/a b/cat.mp4` becomes `mediaconvert/mediaconvert-uploads/a b/cat-hd.mp4`
    /// (MediaConvert names files after the input's base name plus the name modifier).
    pub fn filling_for(&self, source: &SourceObject) -> Filling<'_> {
        let folder = match source.key.rsplit_once('/') {
            Some((folder, _)) => format!("{folder}/"),
            None => String::new(),
        };
        let mut user_metadata = BTreeMap::from([
            (metadata::PIPELINE.to_owned(), self.pipeline.clone()),
            (metadata::TEMPLATE.to_owned(), self.template_name.clone()),
            (metadata::SOURCE_BUCKET.to_owned(), source.bucket.clone()),
            (metadata::SOURCE_KEY.to_owned(), source.key.clone()),
        ]);
        if let Some(etag) = &source.etag {
            user_metadata.insert(metadata::SOURCE_ETAG.to_owned(), etag.clone());
        }
        if let Some(version) = &source.version_id {
            user_metadata.insert(metadata::SOURCE_VERSION.to_owned(), version.clone());
        }
        Filling {
            file_input: format!("s3://{}/{}", source.bucket, source.key),
            destination: format!("s3://{}/{}{folder}", self.output_bucket, self.output_prefix),
            queue_arn: &self.queue_arn,
            role_arn: &self.role_arn,
            user_metadata,
        }
    }

    /// A built-in template filled for one object (see [`Config::filling_for`]); `None` when the
    /// configured template is the account's.
    pub fn job_for(&self, source: &SourceObject) -> Option<JobTemplate> {
        match &self.template {
            TemplateSource::BuiltIn(template) => Some(template.fill(&self.filling_for(source))),
            TemplateSource::Account => None,
        }
    }
}

/// What one invocation did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Job ids, in record order.
    pub submitted: Vec<String>,
    pub rejected: usize,
    pub skipped: usize,
}

/// The function: configuration and clients built once at cold start.
pub struct Submitter {
    pub config: Config,
    pub sns: aws_sdk_sns::Client,
    /// A client for `DescribeEndpoints` (the SDK's default endpoint resolution).
    pub discovery: aws_sdk_mediaconvert::Client,
    /// The client jobs are created with: the configured endpoint, or the discovered one. Set
    /// on first use and kept for the life of the process.
    jobs: OnceCell<aws_sdk_mediaconvert::Client>,
    /// The account's job template ([`TemplateSource::Account`]), read on first use and kept.
    account_template: OnceCell<aws_sdk_mediaconvert::types::JobTemplate>,
    /// One rejection per object version when S3 sends an event twice (jobs are already
    /// deduplicated by their client request token).
    ledger: Ledger,
}

impl Submitter {
    pub fn new(config: Config, sns: aws_sdk_sns::Client, discovery: aws_sdk_mediaconvert::Client) -> Self {
        Submitter {
            config,
            sns,
            discovery,
            jobs: OnceCell::new(),
            account_template: OnceCell::new(),
            ledger: Ledger::disabled(),
        }
    }

    /// Publishes rejections through `ledger` (see [`shared::ledger`]).
    pub fn with_ledger(mut self, ledger: Ledger) -> Self {
        self.ledger = ledger;
        self
    }

    /// The jobs client, discovering the endpoint on the first call only.
    pub async fn jobs_client(&self) -> Result<&aws_sdk_mediaconvert::Client, ProcessingError> {
        self.jobs
            .get_or_try_init(|| async {
                let endpoint = match &self.config.endpoint {
                    Some(endpoint) => endpoint.clone(),
                    None => self.discover_endpoint().await?,
                };
                let config = self.discovery.config().to_builder().endpoint_url(&endpoint).build();
                Ok(aws_sdk_mediaconvert::Client::from_conf(config))
            })
            .await
    }

    // AWS now also serves MediaConvert on the regional endpoint and marks DescribeEndpoints
    // deprecated; it still answers, and this deployment's contract is "discover when not told".
    #[allow(deprecated)]
    async fn discover_endpoint(&self) -> Result<String, ProcessingError> {
        let found = self
            .discovery
            .describe_endpoints()
            .max_results(1)
            .send()
            .await
            .map_err(|e| ProcessingError::from_sdk("MediaConvert DescribeEndpoints", e))?;
        let url = found
            .endpoints()
            .iter()
            .find_map(|e| e.url().map(str::to_owned))
            .ok_or_else(|| ProcessingError::retryable(Code::AwsError, "DescribeEndpoints returned no endpoint"))?;
        tracing::info!(endpoint = %url, "MediaConvert endpoint discovered; kept for later invocations");
        Ok(url)
    }

    /// Creates the job for one object; returns its id. The same object version always sends the
    /// same token, so MediaConvert answers a duplicate with the job it already has.
    pub async fn submit(&self, source: &SourceObject) -> Result<String, ProcessingError> {
        let client = self.jobs_client().await?;
        let request = match self.config.job_for(source) {
            Some(job) => {
                let mut request = client
                    .create_job()
                    .queue(&job.queue)
                    .role(&job.role)
                    .settings(job.sdk_settings())
                    .set_acceleration_settings(job.sdk_acceleration_settings())
                    .set_priority(job.priority)
                    .set_user_metadata(Some(job.user_metadata.clone().into_iter().collect()));
                if let Some(interval) = &job.status_update_interval {
                    request = request.status_update_interval(aws_sdk_mediaconvert::types::StatusUpdateInterval::from(
                        interval.as_str(),
                    ));
                }
                request
            }
            None => {
                let template = self.account_template(client).await?;
                let filling = self.config.filling_for(source);
                let settings = account::job_settings(template, &filling)
                    .map_err(|unusable| ProcessingError::failed(Code::JobRefused, unusable.0))?;
                // Queue and role are this deployment's; acceleration, priority and status
                // interval come with the template (MediaConvert applies them).
                client
                    .create_job()
                    .job_template(&self.config.template_name)
                    .queue(filling.queue_arn)
                    .role(filling.role_arn)
                    .settings(settings)
                    .set_user_metadata(Some(filling.user_metadata.into_iter().collect()))
            }
        };
        let request = request.client_request_token(source.client_request_token());
        let created = request.send().await.map_err(|e| {
            ProcessingError::from_sdk_with("MediaConvert CreateJob", e, |code, _| {
                // The job itself is wrong for MediaConvert: retrying sends the same job.
                (code == "BadRequestException").then(|| {
                    ProcessingError::failed(Code::JobRefused, format!("MediaConvert refused the job ({code})"))
                })
            })
        });
        created?
            .job()
            .and_then(|j| j.id())
            .map(str::to_owned)
            .ok_or_else(|| ProcessingError::retryable(Code::AwsError, "CreateJob returned no job id"))
    }

    /// The account's job template named by the configuration, read once. A name MediaConvert
    /// does not know is retryable (registering the template fixes it; the event is kept), and
    /// says how to register one.
    async fn account_template(
        &self,
        client: &aws_sdk_mediaconvert::Client,
    ) -> Result<&aws_sdk_mediaconvert::types::JobTemplate, ProcessingError> {
        let name = &self.config.template_name;
        self.account_template
            .get_or_try_init(|| async {
                let found = client
                    .get_job_template()
                    .name(name)
                    .send()
                    .await
                    .map_err(|e| {
                        ProcessingError::from_sdk_with("MediaConvert GetJobTemplate", e, |code, _| {
                            (code == "NotFoundException").then(|| {
                                ProcessingError::retryable(
                                    Code::AwsServiceError,
                                    format!(
                                        "MediaConvert has no job template {name:?} in this account and region; register it \
                                         (infra/ops/register_job_templates.py FILE, or aws mediaconvert create-job-template \
                                         --cli-input-json file://FILE) or set MediaConvertTemplate to one it has"
                                    ),
                                )
                            })
                        })
                    })?;
                let template = found.job_template().cloned().ok_or_else(|| {
                    ProcessingError::retryable(Code::AwsError, "GetJobTemplate returned no job template")
                })?;
                tracing::info!(template = %name, "job template read from MediaConvert; kept for later invocations");
                Ok(template)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %event.context.request_id, template = %self.config.template_name))]
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Summary, ProcessingError> {
        let Some(records) = s3_event::records(&event.payload)? else {
            tracing::info!("s3:TestEvent skipped");
            return Ok(Summary {
                skipped: 1,
                ..Summary::default()
            });
        };
        let mut summary = Summary::default();
        let mut first_failure: Option<ProcessingError> = None;
        for (index, record) in records.iter().enumerate() {
            let outcome = match decide(record, &self.config) {
                Decision::Submit(source) => match self.submit(&source).await {
                    Ok(job_id) => {
                        tracing::info!(index, bucket = %source.bucket, key = %source.key, job_id, "MediaConvert job created");
                        summary.submitted.push(job_id);
                        Ok(())
                    }
                    Err(err) if err.is_retryable() => Err(err),
                    Err(err) => {
                        tracing::warn!(index, key = %source.key, code = %err.code(), reason = %err.reason, "job refused");
                        self.answer(
                            &rejection(&source, &self.config, &err),
                            record,
                            &event.context.request_id,
                        )
                        .await
                    }
                },
                Decision::Reject(result) => {
                    let sent = self.answer(&result, record, &event.context.request_id).await;
                    if sent.is_ok() {
                        summary.rejected += 1;
                    }
                    sent
                }
                Decision::Skip(why) => {
                    summary.skipped += 1;
                    tracing::info!(index, why, "record skipped");
                    Ok(())
                }
            };
            if let Err(err) = outcome {
                tracing::error!(index, error = %err, "record not handled; the event will be retried");
                first_failure.get_or_insert(err);
            }
        }
        match first_failure {
            Some(err) => Err(err),
            None => Ok(summary),
        }
    }

    /// Publishes a rejection once per object version and reason (see [`shared::ledger`]).
    async fn answer(&self, result: &PipelineResult, record: &Value, request_id: &str) -> Result<(), ProcessingError> {
        let outcome = s3_rejection_outcome("mediaconvert-submit", record, result);
        self.ledger
            .publish_once(
                &self.sns,
                &self.config.results_topic_arn,
                &outcome,
                request_id,
                result,
                &result.attributes(),
            )
            .await?;
        let reason = result.reason_code();
        tracing::warn!(key = %result.source.key, reason, "object answered without a job");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
