//! Upload publisher: S3 `ObjectCreated` events → one message per video object on the uploads
//! topic; anything that is not a video is answered with a named rejection on the results topic.
//!
//! Every record of an event is handled (S3 may batch several). A malformed record is rejected
//! on its own without stopping the others. If any publish fails, the invocation fails as
//! retryable: Lambda's asynchronous retry re-runs the event, which is safe because downstream
//! consumers are idempotent (deterministic output keys), and after the last retry the event
//! rests in the function's on-failure queue instead of being lost.

use aws_lambda_events::event::s3::S3EventRecord;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::config::{ConfigError, EnvReader};
use shared::contracts::{extension_of, Job, ObjectRef, PipelineResult, UploadNotice, CONTRACT_VERSION};
use shared::ledger::{s3_rejection_outcome, Ledger, OutcomeKey};
use shared::s3_event::{self, decode_key, shown_key};
use shared::{Code, ProcessingError};

/// Extensions treated as video when `VIDEO_EXTENSIONS` is not set.
pub const DEFAULT_VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "m2ts", "mts", "3gp", "flv", "wmv", "ogv", "mxf",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `UPLOADS_TOPIC_ARN`: where one message per video goes.
    pub uploads_topic_arn: String,
    /// `RESULTS_TOPIC_ARN`: where rejections go.
    pub results_topic_arn: String,
    /// `VIDEO_EXTENSIONS`: comma-separated, lowercase, without dots.
    pub video_extensions: Vec<String>,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let config = Config {
            uploads_topic_arn: env.required("UPLOADS_TOPIC_ARN"),
            results_topic_arn: env.required("RESULTS_TOPIC_ARN"),
            video_extensions: env
                .list_or(
                    "VIDEO_EXTENSIONS",
                    DEFAULT_VIDEO_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
                )
                .into_iter()
                .map(|e: String| e.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
        };
        env.finish()?;
        Ok(config)
    }
}

/// What to do with one S3 event record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Publish(UploadNotice),
    /// Boxed: a result is several times the size of a notice.
    Reject(Box<PipelineResult>),
    /// Not an object creation, or a folder marker: nothing to do.
    Skip(String),
}

/// Decides one record. Pure: no I/O, so every rule is unit-tested.
pub fn decide(record: &Value, config: &Config) -> Decision {
    let record: S3EventRecord = match serde_json::from_value(record.clone()) {
        Ok(record) => record,
        Err(e) => return reject_malformed(record, format!("not an S3 event record: {e}")),
    };
    let event_name = record.event_name.clone().unwrap_or_default();
    if !event_name.starts_with("ObjectCreated:") {
        return Decision::Skip(format!("event {event_name:?} is not an object creation"));
    }
    let (Some(bucket), Some(encoded_key)) = (record.s3.bucket.name.clone(), record.s3.object.key.clone()) else {
        return reject_malformed(
            &serde_json::to_value(&record).unwrap_or_default(),
            "record has no bucket or key".into(),
        );
    };
    let etag = record.s3.object.e_tag.clone().filter(|e| !e.is_empty());
    let key = match decode_key(&encoded_key) {
        Ok(key) => key,
        Err(err) => return Decision::Reject(rejection(&bucket, &shown_key(&encoded_key), etag, &err)),
    };
    if key.ends_with('/') {
        return Decision::Skip(format!("{key:?} is a folder marker"));
    }
    let size = record.s3.object.size.unwrap_or(0).max(0) as u64;
    let extension = extension_of(&key);
    if !config.video_extensions.contains(&extension) {
        let shown = if extension.is_empty() {
            "no extension".to_owned()
        } else {
            format!("\".{extension}\"")
        };
        let err = ProcessingError::rejected(
            Code::NotVideo,
            format!(
                "{shown} is not a video file extension (accepted: {})",
                config.video_extensions.join(", ")
            ),
        );
        return Decision::Reject(rejection(&bucket, &key, etag, &err));
    }
    if size == 0 {
        let err = ProcessingError::rejected(Code::EmptyObject, "the object is empty (0 bytes)");
        return Decision::Reject(rejection(&bucket, &key, etag, &err));
    }
    Decision::Publish(UploadNotice {
        version: CONTRACT_VERSION,
        bucket,
        key,
        size,
        etag,
        version_id: record.s3.object.version_id.clone().filter(|v| !v.is_empty()),
        sequencer: record.s3.object.sequencer.clone().filter(|s| !s.is_empty()),
        // RFC 3339 with milliseconds, as S3 writes `eventTime`.
        event_time: record.event_time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

fn rejection(bucket: &str, key: &str, etag: Option<String>, err: &ProcessingError) -> Box<PipelineResult> {
    let source = ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag,
    };
    Box::new(PipelineResult::from_error(Job::Upload, source, None, err))
}

fn reject_malformed(record: &Value, reason: String) -> Decision {
    let text = |pointer: &str| {
        record
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let err = ProcessingError::rejected(Code::MalformedEvent, reason);
    Decision::Reject(rejection(&text("/s3/bucket/name"), &text("/s3/object/key"), None, &err))
}

/// What one invocation did, returned to the caller (and logged).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub published: usize,
    pub rejected: usize,
    pub skipped: usize,
}

/// The function: configuration and clients built once at cold start.
pub struct Publisher {
    pub sns: aws_sdk_sns::Client,
    /// One notice (and one rejection) per object version when S3 sends an event twice, or
    /// Lambda retries an event some of whose records were already announced.
    pub ledger: Ledger,
    pub config: Config,
}

impl Publisher {
    #[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
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
                Decision::Publish(notice) => {
                    let outcome = OutcomeKey::new([
                        Job::Upload.as_str(),
                        &notice.bucket,
                        &notice.key,
                        notice.source_version(),
                        "announced",
                    ]);
                    let sent = self
                        .ledger
                        .publish_once(
                            &self.sns,
                            &self.config.uploads_topic_arn,
                            &outcome,
                            &event.context.request_id,
                            &notice,
                            &notice.attributes(),
                        )
                        .await;
                    if sent.is_ok() {
                        summary.published += 1;
                        tracing::info!(index, bucket = %notice.bucket, key = %notice.key, size = notice.size, "video announced");
                    }
                    sent
                }
                Decision::Reject(result) => {
                    let outcome = s3_rejection_outcome(Job::Upload.as_str(), record, &result);
                    let sent = self
                        .ledger
                        .publish_once(
                            &self.sns,
                            &self.config.results_topic_arn,
                            &outcome,
                            &event.context.request_id,
                            &result,
                            &result.attributes(),
                        )
                        .await;
                    if sent.is_ok() {
                        summary.rejected += 1;
                        let reason = result.reason_code();
                        tracing::warn!(index, key = %result.source.key, reason, "object rejected");
                    }
                    sent
                }
                Decision::Skip(why) => {
                    summary.skipped += 1;
                    tracing::info!(index, why, "record skipped");
                    continue;
                }
            };
            if let Err(err) = outcome {
                tracing::error!(index, error = %err, "publish failed; the event will be retried");
                first_failure.get_or_insert(err);
            }
        }
        match first_failure {
            Some(err) => Err(err),
            None => Ok(summary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_env(EnvReader::from_pairs([
            ("UPLOADS_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:uploads"),
            ("RESULTS_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:results"),
        ]))
        .unwrap()
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn record_with_key(key: &str, size: i64) -> Value {
        let mut event = fixture("s3-put.json");
        let record = &mut event["Records"][0];
        record["s3"]["object"]["key"] = key.into();
        record["s3"]["object"]["size"] = size.into();
        record.clone()
    }

    #[test]
    fn a_video_is_announced_with_its_decoded_key() {
        let event = fixture("s3-put.json");
        match decide(&event["Records"][0], &config()) {
            Decision::Publish(notice) => {
                assert_eq!(notice.key, "uploads/my demo+clip é.mp4");
                assert_eq!(notice.bucket, "video-suite-source");
                assert_eq!(notice.size, 1024);
                assert_eq!(notice.etag.as_deref(), Some("0123456789abcdef0123456789abcdef"));
                assert_eq!(notice.sequencer.as_deref(), Some("0A1B2C3D4E5F678901"));
                assert_eq!(notice.event_time, "2026-11-21T09:00:00.000Z");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_videos_and_empty_objects_are_named_rejections() {
        for (key, size, code) in [
            ("notes.txt", 10, Code::NotVideo),
            ("noext", 10, Code::NotVideo),
            ("empty.mp4", 0, Code::EmptyObject),
        ] {
            match decide(&record_with_key(key, size), &config()) {
                Decision::Reject(result) => {
                    assert_eq!(result.reason.unwrap().code, code, "{key}");
                    assert_eq!(result.source.key, key);
                }
                other => panic!("{key}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn a_key_longer_than_s3_allows_is_rejected_by_name_with_the_key_cut_short() {
        let longest = format!("{}.mp4", "k".repeat(1020));
        assert!(matches!(
            decide(&record_with_key(&longest, 5), &config()),
            Decision::Publish(_)
        ));
        let huge = format!("{}.mp4", "k".repeat(300_000));
        match decide(&record_with_key(&huge, 5), &config()) {
            Decision::Reject(result) => {
                assert_eq!(result.reason.unwrap().code, Code::KeyTooLong);
                assert_eq!(result.source.key.len(), s3_event::SHOWN_KEY_CHARS);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_malformed_record_with_a_huge_key_is_answered_with_the_key_cut_short() {
        let huge = "k".repeat(300_000);
        let decision = decide(
            &serde_json::json!({"eventName": "ObjectCreated:Put", "s3": {"object": {"key": huge}}}),
            &config(),
        );
        match decision {
            Decision::Reject(result) => {
                assert_eq!(result.reason.unwrap().code, Code::MalformedEvent);
                assert_eq!(result.source.key.len(), s3_event::MAX_KEY_BYTES);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn extension_check_ignores_case() {
        assert!(matches!(
            decide(&record_with_key("CLIP.MOV", 5), &config()),
            Decision::Publish(_)
        ));
    }

    #[test]
    fn folder_markers_and_deletions_are_skipped() {
        assert!(matches!(
            decide(&record_with_key("folder%2F", 0), &config()),
            Decision::Skip(_)
        ));
        let mut record = record_with_key("a.mp4", 5);
        record["eventName"] = "ObjectRemoved:Delete".into();
        assert!(matches!(decide(&record, &config()), Decision::Skip(_)));
    }

    #[test]
    fn a_malformed_record_is_rejected_by_itself() {
        let decision = decide(
            &serde_json::json!({"eventName": "ObjectCreated:Put", "s3": 5}),
            &config(),
        );
        match decision {
            Decision::Reject(result) => assert_eq!(result.reason.unwrap().code, Code::MalformedEvent),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn configuration_names_missing_topics() {
        let err = Config::from_env(EnvReader::from_pairs([])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("UPLOADS_TOPIC_ARN is missing") && text.contains("RESULTS_TOPIC_ARN is missing"),
            "{text}"
        );
    }

    #[test]
    fn video_extensions_are_configurable() {
        let config = Config::from_env(EnvReader::from_pairs([
            ("UPLOADS_TOPIC_ARN", "u"),
            ("RESULTS_TOPIC_ARN", "r"),
            ("VIDEO_EXTENSIONS", ".MP4, mov"),
        ]))
        .unwrap();
        assert_eq!(config.video_extensions, ["mp4", "mov"]);
    }
}

/// The handler against a mocked SNS (the SDK's own `aws-smithy-mocks`): which messages go to
/// which topic, and what a failed publish does to the invocation.
#[cfg(test)]
mod handler_tests {
    use super::*;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use lambda_runtime::Context;

    const UPLOADS: &str = "arn:aws:sns:us-east-1:000000000000:uploads";
    const RESULTS: &str = "arn:aws:sns:us-east-1:000000000000:results";

    fn publisher(sns: aws_sdk_sns::Client) -> Publisher {
        let config = Config::from_env(EnvReader::from_pairs([
            ("UPLOADS_TOPIC_ARN", UPLOADS),
            ("RESULTS_TOPIC_ARN", RESULTS),
        ]))
        .unwrap();
        let ledger = Ledger::disabled();
        Publisher { sns, ledger, config }
    }

    fn event(keys: &[&str]) -> Value {
        let fixture: Value = serde_json::from_str(include_str!("../tests/fixtures/s3-put.json")).unwrap();
        let records: Vec<Value> = keys
            .iter()
            .map(|key| {
                let mut record = fixture["Records"][0].clone();
                record["s3"]["object"]["key"] = (*key).into();
                record
            })
            .collect();
        serde_json::json!({ "Records": records })
    }

    #[tokio::test]
    async fn every_record_is_answered_on_the_right_topic() {
        let to_uploads = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| r.topic_arn() == Some(UPLOADS))
            .then_output(|| PublishOutput::builder().message_id("u").build());
        let to_results = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                r.topic_arn() == Some(RESULTS) && r.message().unwrap_or("").contains(&format!("\"{}\"", Code::NotVideo))
            })
            .then_output(|| PublishOutput::builder().message_id("r").build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&to_uploads, &to_results]);
        let summary = publisher(sns)
            .handle(LambdaEvent::new(
                event(&["a.mp4", "notes.txt", "b+c.mov"]),
                Context::default(),
            ))
            .await
            .unwrap();
        assert_eq!(
            summary,
            Summary {
                published: 2,
                rejected: 1,
                skipped: 0
            }
        );
        assert_eq!(to_uploads.num_calls(), 2);
        assert_eq!(to_results.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_failed_publish_fails_the_invocation_as_retryable_after_trying_every_record() {
        let failing = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| r.message().unwrap_or("").contains("a.mp4"))
            .then_http_response(|| {
                aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(503).unwrap(),
                    aws_smithy_types::body::SdkBody::from(
                        "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>",
                    ),
                )
            });
        let working =
            mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().message_id("ok").build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&failing, &working], |c| c
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled()));
        let err = publisher(sns)
            .handle(LambdaEvent::new(event(&["a.mp4", "b.mp4"]), Context::default()))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert_eq!(working.num_calls(), 1, "the other record was still announced");
    }

    #[tokio::test]
    async fn the_s3_test_event_is_skipped_without_publishing() {
        let any = mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&any]);
        let test_event: Value = serde_json::from_str(include_str!("../tests/fixtures/s3-test-event.json")).unwrap();
        let summary = publisher(sns)
            .handle(LambdaEvent::new(test_event, Context::default()))
            .await
            .unwrap();
        assert_eq!(summary.skipped, 1);
        assert_eq!(any.num_calls(), 0);
    }

    #[tokio::test]
    async fn an_event_without_records_is_a_named_rejection() {
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, Vec::<&aws_smithy_mocks::Rule>::new());
        let err = publisher(sns)
            .handle(LambdaEvent::new(
                serde_json::json!({"hello": "world"}),
                Context::default(),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::MalformedEvent);
        assert!(!err.is_retryable());
    }
}
