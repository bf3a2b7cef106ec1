//! MediaConvert results: every MediaConvert job of this pipeline gets an answer. EventBridge
//! delivers MediaConvert's "Job State Change" events (the rule matches COMPLETE, ERROR and
//! CANCELED for jobs whose `userMetadata.pipeline` is this stack); each becomes one result on
//! the results topic:
//!
//! * `COMPLETE` → `available`, with every output's bucket, key and CloudFront URL (file group
//!   media, HLS variant playlists and the HLS multivariant playlist), sizes and durations;
//! * `ERROR` → `failed`, reason `MEDIACONVERT_ERROR` with MediaConvert's message, and its numeric
//!   `errorCode`;
//! * `CANCELED` → `canceled`.
//!
//! The source object comes back from the job's `userMetadata`, written by
//! `mediaconvert-submitter`. Other statuses (PROGRESSING, STATUS_UPDATE, …) are acknowledged and
//! skipped. An event that is not a MediaConvert job of this pipeline fails the invocation as a
//! named rejection, so it ends in the function's on-failure queue with the reason rather than
//! vanishing; a publish failure fails it as retryable (Lambda retries the event).
//!
//! A separate crate from the submitter on purpose: answering needs only SNS, so this function
//! does not link the (large) MediaConvert SDK and starts faster.

use std::collections::BTreeMap;

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::config::{ConfigError, EnvReader};
use shared::contracts::mediaconvert_metadata;
use shared::contracts::{
    DeliveredFile, FileKind, Job, JobWarning, MediaConvertJob, ObjectRef, PipelineResult, Reason, ResultStatus,
    CONTRACT_VERSION,
};
use shared::ledger::{Ledger, OutcomeKey};
use shared::storage::key_url_path;
use shared::{Code, ProcessingError};

/// The detail type MediaConvert gives its job events.
pub const DETAIL_TYPE: &str = "MediaConvert Job State Change";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `RESULTS_TOPIC_ARN`
    pub results_topic_arn: String,
    /// `PUBLIC_BASE_URL`: where viewers fetch outputs (`https://<distribution domain>`); a key is
    /// appended path-encoded.
    pub public_base_url: String,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let config = Config {
            results_topic_arn: env.required("RESULTS_TOPIC_ARN"),
            public_base_url: env
                .required::<String>("PUBLIC_BASE_URL")
                .trim_end_matches('/')
                .to_owned(),
        };
        env.finish()?;
        Ok(config)
    }

    /// The viewer URL of a key: each path segment percent-encoded (spaces, `+`, unicode).
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{}", self.public_base_url, key_url_path(key))
    }
}

#[derive(Debug, Deserialize)]
struct JobEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Detail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    job_id: String,
    status: JobState,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    user_metadata: BTreeMap<String, String>,
    #[serde(default)]
    output_group_details: Vec<OutputGroupDetail>,
    #[serde(default)]
    warnings: Vec<JobWarning>,
}

/// `detail.status` of a job event, as MediaConvert spells it. Only the end states are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum JobState {
    Complete,
    Error,
    Canceled,
    /// PROGRESSING, STATUS_UPDATE, INPUT_INFORMATION, …: not an end.
    #[serde(other)]
    NotAnEnd,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputGroupDetail {
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    output_details: Vec<OutputDetail>,
    #[serde(default)]
    playlist_file_paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputDetail {
    #[serde(default)]
    output_file_paths: Vec<String>,
    duration_in_ms: Option<u64>,
    video_details: Option<VideoDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoDetails {
    width_in_px: Option<u32>,
    height_in_px: Option<u32>,
}

/// `s3://bucket/key` → (bucket, key). MediaConvert writes keys as they are, not URL-encoded.
fn split_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}

fn malformed(reason: impl Into<String>) -> ProcessingError {
    ProcessingError::rejected(Code::MalformedEvent, reason)
}

/// The result an event calls for, or `None` for a state that is not an end (PROGRESSING, …).
/// Pure: every rule is unit-tested.
pub fn result_for(event: &Value, config: &Config) -> Result<Option<PipelineResult>, ProcessingError> {
    let event: JobEvent =
        serde_json::from_value(event.clone()).map_err(|e| malformed(format!("not a MediaConvert job event: {e}")))?;
    if event.detail_type != DETAIL_TYPE {
        return Err(malformed(format!(
            "detail-type {:?} is not {DETAIL_TYPE:?}",
            event.detail_type
        )));
    }
    let detail = event.detail;
    let metadata = |name: &str| detail.user_metadata.get(name).filter(|v| !v.is_empty()).cloned();
    let (Some(bucket), Some(key)) = (
        metadata(mediaconvert_metadata::SOURCE_BUCKET),
        metadata(mediaconvert_metadata::SOURCE_KEY),
    ) else {
        return Err(malformed(format!(
            "job {} carries no sourceBucket/sourceKey metadata: not submitted by this pipeline",
            detail.job_id
        )));
    };
    let source = ObjectRef {
        bucket,
        key,
        etag: metadata(mediaconvert_metadata::SOURCE_ETAG),
    };
    let mut job = MediaConvertJob {
        job_id: detail.job_id.clone(),
        error_code: None,
        outputs: Vec::new(),
        warnings: detail.warnings.clone(),
    };
    let (status, reason) = match detail.status {
        JobState::Complete => {
            job.outputs = delivered_files(&detail.output_group_details, config)?;
            (ResultStatus::Available, None)
        }
        JobState::Error => {
            job.error_code = detail.error_code;
            let message = detail
                .error_message
                .clone()
                .unwrap_or_else(|| "MediaConvert reported an error without a message".to_owned());
            let reason = Reason {
                code: Code::MediaconvertError,
                message: match detail.error_code {
                    Some(code) => format!("{message} (MediaConvert error {code})"),
                    None => message,
                },
            };
            (ResultStatus::Failed, Some(reason))
        }
        JobState::Canceled => (
            ResultStatus::Canceled,
            Some(Reason {
                code: Code::MediaconvertCanceled,
                message: "the job was canceled before it finished".to_owned(),
            }),
        ),
        JobState::NotAnEnd => return Ok(None),
    };
    Ok(Some(PipelineResult {
        version: CONTRACT_VERSION,
        job: Job::Mediaconvert,
        status,
        source,
        profile: metadata(mediaconvert_metadata::TEMPLATE),
        output: None,
        reason,
        mediaconvert: Some(job),
        compute: None,
        progress: None,
    }))
}

fn delivered_files(groups: &[OutputGroupDetail], config: &Config) -> Result<Vec<DeliveredFile>, ProcessingError> {
    let file = |uri: &str, kind: FileKind, detail: Option<&OutputDetail>| -> Result<DeliveredFile, ProcessingError> {
        let (bucket, key) =
            split_s3_uri(uri).ok_or_else(|| malformed(format!("output path {uri:?} is not s3://bucket/key")))?;
        let video = detail.and_then(|d| d.video_details.as_ref());
        Ok(DeliveredFile {
            url: config.url_of(&key),
            bucket,
            key,
            kind,
            width: video.and_then(|v| v.width_in_px),
            height: video.and_then(|v| v.height_in_px),
            duration_ms: detail.and_then(|d| d.duration_in_ms),
        })
    };
    let mut files = Vec::new();
    for group in groups {
        // A streaming group's outputs are its renditions (HLS variant playlists, DASH/CMAF
        // representations), named by the group's manifests; a file group's are media files.
        let streaming = matches!(
            group.r#type.as_str(),
            "HLS_GROUP" | "DASH_ISO_GROUP" | "CMAF_GROUP" | "MS_SMOOTH_GROUP"
        );
        for uri in &group.playlist_file_paths {
            files.push(file(uri, FileKind::Master, None)?);
        }
        for detail in &group.output_details {
            for uri in &detail.output_file_paths {
                let kind = if streaming { FileKind::Variant } else { FileKind::Media };
                files.push(file(uri, kind, Some(detail))?);
            }
        }
    }
    if files.is_empty() {
        return Err(malformed("a COMPLETE event without any output path"));
    }
    Ok(files)
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub job_id: Option<String>,
    /// The status published (a [`ResultStatus`]), or `skipped`.
    pub answered: String,
}

impl Outcome {
    /// `answered` for an event that is not an end state.
    pub const SKIPPED: &'static str = "skipped";
}

pub struct Answerer {
    pub sns: aws_sdk_sns::Client,
    /// One result per job end state when EventBridge delivers an event twice.
    pub ledger: Ledger,
    pub config: Config,
}

impl Answerer {
    #[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Outcome, ProcessingError> {
        let job_id = event
            .payload
            .pointer("/detail/jobId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let status = event
            .payload
            .pointer("/detail/status")
            .and_then(Value::as_str)
            .unwrap_or("");
        let result = match result_for(&event.payload, &self.config) {
            Ok(Some(result)) => result,
            Ok(None) => {
                tracing::info!(job_id, status, "not an end state; nothing to answer");
                return Ok(Outcome {
                    job_id,
                    answered: Outcome::SKIPPED.into(),
                });
            }
            Err(err) => {
                tracing::error!(job_id, code = %err.code(), reason = %err.reason, "event not answerable");
                return Err(err);
            }
        };
        let outcome = OutcomeKey::new([
            Job::Mediaconvert.as_str(),
            job_id.as_deref().unwrap_or(""),
            status,
            result.status.as_str(),
        ]);
        // The event's id names this delivery: EventBridge repeats it when it delivers again.
        let delivery = event.payload.get("id").and_then(Value::as_str).unwrap_or("");
        let publication = self
            .ledger
            .publish_once(
                &self.sns,
                &self.config.results_topic_arn,
                &outcome,
                delivery,
                &result,
                &result.attributes(),
            )
            .await?;
        tracing::info!(job_id, key = %result.source.key, status = result.status.as_str(), publication = publication.as_str(), "result answered");
        Ok(Outcome {
            job_id,
            answered: result.status.as_str().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use lambda_runtime::Context;

    fn config() -> Config {
        Config::from_env(EnvReader::from_pairs([
            ("RESULTS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:results"),
            ("PUBLIC_BASE_URL", "https://d111111abcdef8.cloudfront.net/"),
        ]))
        .unwrap()
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn dash_and_cmaf_groups_list_their_manifests_as_master_and_representations_as_variants() {
        let mut event = fixture("job-complete.json");
        event["detail"]["outputGroupDetails"] = serde_json::json!([
            {"type": "CMAF_GROUP",
             "playlistFilePaths": ["s3://video-suite-output/mediaconvert/cmaf/cat.mpd", "s3://video-suite-output/mediaconvert/cmaf/cat.m3u8"],
             "outputDetails": [{"outputFilePaths": ["s3://video-suite-output/mediaconvert/cmaf/cat_720p.m3u8"],
                                "durationInMs": 4000, "videoDetails": {"widthInPx": 1280, "heightInPx": 720}}]},
            {"type": "DASH_ISO_GROUP",
             "playlistFilePaths": ["s3://video-suite-output/mediaconvert/dash/cat.mpd"],
             "outputDetails": [{"durationInMs": 4000, "videoDetails": {"widthInPx": 640, "heightInPx": 360}}]}
        ]);
        let result = result_for(&event, &config()).unwrap().unwrap();
        let summary: Vec<_> = result
            .mediaconvert
            .unwrap()
            .outputs
            .iter()
            .map(|o| (o.kind, o.key.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (FileKind::Master, "mediaconvert/cmaf/cat.mpd".to_owned()),
                (FileKind::Master, "mediaconvert/cmaf/cat.m3u8".to_owned()),
                (FileKind::Variant, "mediaconvert/cmaf/cat_720p.m3u8".to_owned()),
                (FileKind::Master, "mediaconvert/dash/cat.mpd".to_owned()),
            ]
        );
    }

    #[test]
    fn complete_lists_every_output_with_its_cloudfront_url() {
        let result = result_for(&fixture("job-complete.json"), &config()).unwrap().unwrap();
        assert_eq!(
            (result.job, result.status),
            (Job::Mediaconvert, ResultStatus::Available)
        );
        assert_eq!(result.source.key, "mediaconvert-uploads/my cat+1.mp4");
        assert_eq!(result.source.etag.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(result.profile.as_deref(), Some("hd-sd"));
        let job = result.mediaconvert.unwrap();
        assert_eq!(job.job_id, "1763715600000-a1b2c3");
        let summary: Vec<_> = job.outputs.iter().map(|o| (o.kind, o.key.as_str())).collect();
        assert_eq!(
            summary,
            [
                (FileKind::Media, "mediaconvert/mediaconvert-uploads/my cat+1-hd.mp4"),
                (FileKind::Media, "mediaconvert/mediaconvert-uploads/my cat+1-sd.mp4"),
                (FileKind::Master, "mediaconvert/mediaconvert-uploads/hls/my cat+1.m3u8"),
                (
                    FileKind::Variant,
                    "mediaconvert/mediaconvert-uploads/hls/my cat+1_360p.m3u8"
                ),
            ]
        );
        let sd = &job.outputs[1];
        assert_eq!(sd.bucket, "video-suite-output");
        assert_eq!(
            sd.url,
            "https://d111111abcdef8.cloudfront.net/mediaconvert/mediaconvert-uploads/my%20cat%2B1-sd.mp4"
        );
        assert_eq!(
            (sd.width, sd.height, sd.duration_ms),
            (Some(256), Some(144), Some(6000))
        );
    }

    /// What this function publishes for each end state is its fixture in `shared/fixtures/`.
    #[test]
    fn each_end_state_is_published_as_its_fixture() {
        let mut canceled = fixture("job-error.json");
        canceled["detail"]["status"] = "CANCELED".into();
        for (event, published) in [
            (fixture("job-complete.json"), "result-mediaconvert-available.json"),
            (fixture("job-error.json"), "result-mediaconvert-failed.json"),
            (canceled, "result-mediaconvert-canceled.json"),
        ] {
            let written = serde_json::to_value(result_for(&event, &config()).unwrap().unwrap()).unwrap();
            assert_eq!(
                written,
                shared::contracts::fixture(published),
                "{published}: publishes {written:#}"
            );
        }
    }

    #[test]
    fn error_carries_code_and_message() {
        let result = result_for(&fixture("job-error.json"), &config()).unwrap().unwrap();
        assert_eq!(result.status, ResultStatus::Failed);
        let reason = result.reason.unwrap();
        assert_eq!(reason.code, Code::MediaconvertError);
        assert!(
            reason.message.contains("No parser found for container"),
            "{}",
            reason.message
        );
        assert!(reason.message.contains("1010"));
        assert_eq!(result.mediaconvert.unwrap().error_code, Some(1010));
    }

    #[test]
    fn canceled_is_its_own_status_and_progress_is_skipped() {
        let mut event = fixture("job-error.json");
        event["detail"]["status"] = "CANCELED".into();
        let result = result_for(&event, &config()).unwrap().unwrap();
        assert_eq!(result.status, ResultStatus::Canceled);
        event["detail"]["status"] = "PROGRESSING".into();
        assert_eq!(result_for(&event, &config()).unwrap(), None);
    }

    #[test]
    fn events_of_other_jobs_or_kinds_are_named_rejections() {
        let mut foreign = fixture("job-error.json");
        foreign["detail"]["userMetadata"] = serde_json::json!({});
        assert_eq!(
            result_for(&foreign, &config()).unwrap_err().code(),
            Code::MalformedEvent
        );
        let mut other = fixture("job-complete.json");
        other["detail-type"] = "Object Created".into();
        assert_eq!(result_for(&other, &config()).unwrap_err().code(), Code::MalformedEvent);
        assert_eq!(
            result_for(&serde_json::json!({"hello": 1}), &config())
                .unwrap_err()
                .code(),
            Code::MalformedEvent
        );
    }

    #[tokio::test]
    async fn the_result_is_published_with_filterable_attributes() {
        let publish = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                let attributes = r.message_attributes().unwrap();
                r.topic_arn() == Some("arn:aws:sns:us-east-1:123456789012:results")
                    && attributes["job"].string_value() == Some(Job::Mediaconvert.as_str())
                    && attributes["status"].string_value() == Some(ResultStatus::Failed.as_str())
                    && attributes["reason"].string_value() == Some(Code::MediaconvertError.as_str())
            })
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let answerer = Answerer {
            sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]),
            ledger: Ledger::disabled(),
            config: config(),
        };
        let outcome = answerer
            .handle(LambdaEvent::new(fixture("job-error.json"), Context::default()))
            .await
            .unwrap();
        assert_eq!(outcome.answered, ResultStatus::Failed.as_str());
        assert_eq!(publish.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_failed_publish_is_retryable() {
        let publish = mock!(aws_sdk_sns::Client::publish).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(503).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>",
                ),
            )
        });
        let answerer = Answerer {
            sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish], |c| c
                .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())),
            ledger: Ledger::disabled(),
            config: config(),
        };
        let err = answerer
            .handle(LambdaEvent::new(fixture("job-complete.json"), Context::default()))
            .await
            .unwrap_err();
        assert!(err.is_retryable());
    }
}
