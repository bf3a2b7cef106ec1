//! One result per outcome, however often its trigger arrives.
//!
//! Every trigger of this suite is delivered at least once: S3 may send an event twice, SNS and
//! SQS may deliver a message twice, EventBridge may repeat a job event, and a function that
//! crashes after publishing gets its message again. Outputs are already idempotent
//! (deterministic keys, atomic writes, MediaConvert's client request token); this ledger does
//! the same for the messages the functions publish, so a subscriber sees each outcome once.
//!
//! An outcome is named by an [`OutcomeKey`] (what it is about and what it came to). Before
//! publishing, the function *claims* the key in a DynamoDB table with a conditional write;
//! after publishing, it marks the key published:
//!
//! * unclaimed → claimed by this delivery → publish → `published`;
//! * `published` → a duplicate: nothing is sent again;
//! * claimed by another delivery that is still within [`CLAIM_STALE_AFTER`] → that delivery is
//!   publishing now, and its own message stays in its queue until it has, so nothing is lost by
//!   leaving it to it;
//! * claimed by this very delivery (the same message redelivered after a crash), or a claim
//!   older than [`CLAIM_STALE_AFTER`] (its holder died and gave up) → claimed again.
//!
//! A crash between the publish and the mark leaves a claim that the redelivered message
//! re-takes and publishes again: at least once, never lost. That window is one DynamoDB write.
//! Entries expire after [`RETENTION`] (DynamoDB TTL), the longest an SQS message is kept, so no
//! duplicate can arrive later than its entry lives.
//!
//! Without a table (`LEDGER_TABLE` unset, e.g. a function run on its own) every result is
//! published, as before: the ledger is an addition, never a gate.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::contracts::PipelineResult;
use crate::publish::{publish_json, Attribute};
use crate::ProcessingError;

/// A claim older than this is taken to be abandoned: longer than any Lambda invocation (15 min).
pub const CLAIM_STALE_AFTER: Duration = Duration::from_secs(20 * 60);
/// How long an entry is kept: SQS's longest retention, 14 days.
pub const RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

mod attr {
    pub const KEY: &str = "outcome";
    pub const STATE: &str = "state";
    pub const OWNER: &str = "owner";
    pub const CLAIMED_AT: &str = "claimed_at";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const SUBJECT: &str = "subject";
    pub const MESSAGE_ID: &str = "message_id";
}
const CLAIMED: &str = "claimed";
const PUBLISHED: &str = "published";

/// What an outcome is about and what it came to, e.g. `["rendition", "720p", bucket, key,
/// etag, "available"]`. Stored as a SHA-256 of the parts (DynamoDB keys are limited to 2 KiB;
/// S3 keys alone may take 1 KiB), with a readable subject beside it for whoever looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeKey {
    hash: String,
    subject: String,
}

impl OutcomeKey {
    pub fn new<S: AsRef<str>>(parts: impl IntoIterator<Item = S>) -> Self {
        let mut hasher = Sha256::new();
        let mut subject = String::new();
        for (i, part) in parts.into_iter().enumerate() {
            let part = part.as_ref();
            if i > 0 {
                subject.push(' ');
            }
            subject.push_str(part);
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        OutcomeKey {
            hash: hex::encode(hasher.finalize()),
            subject: crate::error::truncate_chars(&subject, 512),
        }
    }

    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// The outcome of rejecting the object of one S3 event record: `stage`, the object, its
/// version (the record's sequencer, which a duplicated event repeats, else the ETag) and the
/// reason's code. Used by the functions S3 invokes directly.
pub fn s3_rejection_outcome(stage: &str, record: &serde_json::Value, result: &PipelineResult) -> OutcomeKey {
    let version = record
        .pointer("/s3/object/sequencer")
        .and_then(serde_json::Value::as_str)
        .or(result.source.etag.as_deref())
        .unwrap_or("");
    OutcomeKey::new([
        stage,
        &result.source.bucket,
        &result.source.key,
        version,
        result.reason_code(),
    ])
}

/// What [`Ledger::publish_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    /// Published now (SNS message id).
    Published(String),
    /// This outcome was published before, nothing sent: by another delivery (a duplicate), or
    /// by this very message before it came back (a crash or a retry after the publish), in
    /// which case the caller may still owe the steps that follow the publish.
    AlreadyPublished { by_this_delivery: bool },
    /// Another delivery holds the claim and is publishing it: nothing sent by this one.
    ClaimedElsewhere,
}

impl Publication {
    pub fn as_str(&self) -> &'static str {
        match self {
            Publication::Published(_) => "published",
            Publication::AlreadyPublished { .. } => "already published",
            Publication::ClaimedElsewhere => "claimed by another delivery",
        }
    }
}

/// The ledger table (`LEDGER_TABLE`), or none.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The client and the table name; none: publish every result.
    table: Option<(aws_sdk_dynamodb::Client, String)>,
}

impl Ledger {
    /// The ledger named by `LEDGER_TABLE` (unset or empty: none). Built once at cold start.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        let table = std::env::var("LEDGER_TABLE").ok().filter(|t| !t.trim().is_empty());
        Ledger::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }

    pub fn new(dynamodb: aws_sdk_dynamodb::Client, table: Option<String>) -> Self {
        if table.is_none() {
            tracing::warn!("LEDGER_TABLE is not set: a duplicated trigger publishes its result again");
        }
        Ledger {
            table: table.map(|table| (dynamodb, table)),
        }
    }

    /// No ledger: every result is published (unit tests, a function run on its own).
    pub fn disabled() -> Self {
        Ledger { table: None }
    }

    /// Publishes `message` on `topic_arn` unless this outcome was published already.
    /// `delivery` names this delivery of the trigger in a way a redelivery of the *same*
    /// message repeats (an SQS message id, a Lambda request id, an EventBridge event id).
    /// Errors are retryable: the caller hands its trigger back and nothing is lost.
    pub async fn publish_once(
        &self,
        sns: &aws_sdk_sns::Client,
        topic_arn: &str,
        outcome: &OutcomeKey,
        delivery: &str,
        message: &impl Serialize,
        attributes: &[(&str, Attribute)],
    ) -> Result<Publication, ProcessingError> {
        let Some((dynamodb, table)) = &self.table else {
            return publish_json(sns, topic_arn, message, attributes)
                .await
                .map(Publication::Published);
        };
        if let Some(earlier) = claim(dynamodb, table, outcome, delivery).await? {
            tracing::info!(outcome = %outcome.subject, delivery, answer = earlier.as_str(), "duplicate outcome; not published again");
            return Ok(earlier);
        }
        let message_id = publish_json(sns, topic_arn, message, attributes).await?;
        mark_published(dynamodb, table, outcome, delivery, &message_id).await;
        Ok(Publication::Published(message_id))
    }
}

/// Claims `outcome` for `delivery`; `Some` says why this delivery must not publish.
async fn claim(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    outcome: &OutcomeKey,
    delivery: &str,
) -> Result<Option<Publication>, ProcessingError> {
    let now = epoch_secs(SystemTime::now());
    let stale_before = now.saturating_sub(CLAIM_STALE_AFTER.as_secs());
    let item = HashMap::from([
        (attr::KEY.to_owned(), s(&outcome.hash)),
        (attr::STATE.to_owned(), s(CLAIMED)),
        (attr::OWNER.to_owned(), s(delivery)),
        (attr::CLAIMED_AT.to_owned(), n(now)),
        (attr::EXPIRES_AT.to_owned(), n(now + RETENTION.as_secs())),
        (attr::SUBJECT.to_owned(), s(&outcome.subject)),
    ]);
    let result = dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(
            "attribute_not_exists(#key) OR (#state = :claimed AND (#owner = :owner OR #claimed_at < :stale))",
        )
        .expression_attribute_names("#key", attr::KEY)
        .expression_attribute_names("#state", attr::STATE)
        .expression_attribute_names("#owner", attr::OWNER)
        .expression_attribute_names("#claimed_at", attr::CLAIMED_AT)
        .expression_attribute_values(":claimed", s(CLAIMED))
        .expression_attribute_values(":owner", s(delivery))
        .expression_attribute_values(":stale", n(stale_before))
        .send()
        .await;
    match result {
        Ok(_) => Ok(None),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            let item = dynamodb
                .get_item()
                .table_name(table)
                .key(attr::KEY, s(&outcome.hash))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| ProcessingError::from_sdk("DynamoDB GetItem (ledger)", e))?
                .item
                .unwrap_or_default();
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str);
            Ok(Some(match text(attr::STATE) {
                Some(PUBLISHED) => Publication::AlreadyPublished {
                    by_this_delivery: text(attr::OWNER) == Some(delivery),
                },
                _ => Publication::ClaimedElsewhere,
            }))
        }
        Err(err) => Err(ProcessingError::from_sdk("DynamoDB PutItem (ledger claim)", err)),
    }
}

/// Not fatal when it fails: the result is out; the claim stays, and only a redelivery of
/// this same message (or one after the claim went stale) would publish it again.
async fn mark_published(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    outcome: &OutcomeKey,
    delivery: &str,
    message_id: &str,
) {
    let result = dynamodb
        .update_item()
        .table_name(table)
        .key(attr::KEY, s(&outcome.hash))
        .update_expression("SET #state = :published, #message_id = :message_id")
        .condition_expression("#owner = :owner")
        .expression_attribute_names("#state", attr::STATE)
        .expression_attribute_names("#owner", attr::OWNER)
        .expression_attribute_names("#message_id", attr::MESSAGE_ID)
        .expression_attribute_values(":published", s(PUBLISHED))
        .expression_attribute_values(":owner", s(delivery))
        .expression_attribute_values(":message_id", s(message_id))
        .send()
        .await;
    if let Err(err) = result {
        tracing::warn!(outcome = %outcome.subject, error = %crate::error::DisplayErrorChain(&err), "result published but not marked in the ledger");
    }
}

fn epoch_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn key() -> OutcomeKey {
        OutcomeKey::new(["rendition", "720p", "bucket", "a b+c.mp4", "etag", "available"])
    }

    fn condition_failed() -> PutItemError {
        PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
    }

    #[test]
    fn keys_differ_with_any_part_and_with_where_parts_split() {
        assert_eq!(key(), key());
        assert_ne!(OutcomeKey::new(["ab", "c"]).hash, OutcomeKey::new(["a", "bc"]).hash);
        assert_ne!(
            key().hash,
            OutcomeKey::new(["rendition", "720p", "bucket", "a b+c.mp4", "etag", "rejected"]).hash
        );
        assert_eq!(key().hash.len(), 64);
    }

    #[tokio::test]
    async fn a_first_delivery_claims_publishes_and_marks() {
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.condition_expression()
                    .is_some_and(|c| c.contains("attribute_not_exists"))
            })
            .then_output(|| PutItemOutput::builder().build());
        let mark = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.expression_attribute_values().unwrap()[":message_id"].as_s().unwrap() == "m-1")
            .then_output(|| UpdateItemOutput::builder().build());
        let publish =
            mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().message_id("m-1").build());
        let ledger = Ledger::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put, &mark]),
            Some("ledger".into()),
        );
        let sns = mock_client!(aws_sdk_sns, [&publish]);
        let answer = ledger
            .publish_once(&sns, "arn:topic", &key(), "msg-1", &serde_json::json!({"a": 1}), &[])
            .await
            .unwrap();
        assert_eq!(answer, Publication::Published("m-1".into()));
        assert_eq!((put.num_calls(), publish.num_calls(), mark.num_calls()), (1, 1, 1));
    }

    /// A delivery whose claim is refused because the ledger holds the outcome in `state`:
    /// what it answered, and how many times it published.
    async fn refused_delivery(state: &'static str, delivery: &str) -> (Publication, usize) {
        let put = mock!(aws_sdk_dynamodb::Client::put_item).then_error(condition_failed);
        let get = mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(move || GetItemOutput::builder().item(attr::STATE, s(state)).build());
        let publish = mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().build());
        let ledger = Ledger::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put, &get]),
            Some("ledger".into()),
        );
        let sns = mock_client!(aws_sdk_sns, [&publish]);
        let answer = ledger
            .publish_once(&sns, "arn:topic", &key(), delivery, &serde_json::json!({}), &[])
            .await
            .unwrap();
        (answer, publish.num_calls())
    }

    #[tokio::test]
    async fn a_duplicate_of_a_published_outcome_sends_nothing() {
        let (answer, published) = refused_delivery(PUBLISHED, "msg-2").await;
        assert_eq!(
            answer,
            Publication::AlreadyPublished {
                by_this_delivery: false
            }
        );
        assert_eq!(published, 0);
    }

    #[tokio::test]
    async fn a_duplicate_while_another_delivery_holds_the_claim_sends_nothing() {
        let (answer, published) = refused_delivery(CLAIMED, "msg-3").await;
        assert_eq!(answer, Publication::ClaimedElsewhere);
        assert_eq!(published, 0);
    }

    #[tokio::test]
    async fn a_claim_that_cannot_be_written_is_retryable_and_publishes_nothing() {
        let put = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
            PutItemError::ProvisionedThroughputExceededException(
                aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException::builder()
                    .message("slow down")
                    .build(),
            )
        });
        let publish = mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().build());
        let ledger = Ledger::new(mock_client!(aws_sdk_dynamodb, [&put]), Some("ledger".into()));
        let sns = mock_client!(aws_sdk_sns, [&publish]);
        let err = ledger
            .publish_once(&sns, "arn:topic", &key(), "msg-4", &serde_json::json!({}), &[])
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert_eq!(publish.num_calls(), 0);
    }

    #[tokio::test]
    async fn without_a_table_every_result_is_published() {
        let publish =
            mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().message_id("m").build());
        let ledger = Ledger::disabled();
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]);
        for _ in 0..2 {
            let answer = ledger
                .publish_once(&sns, "arn:topic", &key(), "msg", &serde_json::json!({}), &[])
                .await
                .unwrap();
            assert_eq!(answer, Publication::Published("m".into()));
        }
        assert_eq!(publish.num_calls(), 2);
    }
}
