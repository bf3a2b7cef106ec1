//! SQS batches answered per message.
//!
//! A batch handler returns an `SqsBatchResponse` naming only the messages to retry
//! (`ReportBatchItemFailures` on the trigger). Rejected and failed messages are *done*: their
//! outcome has been reported. Messages the invocation has no time left for are handed back
//! untouched, rather than being cut off by Lambda's timeout.

use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageAttributeValue;
use tracing::Instrument;

use crate::error::truncate_chars;
use crate::ffmpeg::Deadline;
use crate::{Code, ProcessingError};

/// The body of an SQS message, with the SNS envelope removed when there is one (a subscription
/// without raw message delivery wraps the message in `{"Type":"Notification","Message":…}`).
pub fn unwrap_sns_envelope(body: &str) -> Result<String, ProcessingError> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| ProcessingError::rejected(Code::MalformedMessage, format!("message body is not JSON: {e}")))?;
    let is_envelope =
        value.get("Type").and_then(|t| t.as_str()) == Some("Notification") && value.get("TopicArn").is_some();
    if is_envelope {
        return value
            .get("Message")
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .ok_or_else(|| ProcessingError::rejected(Code::MalformedMessage, "SNS envelope without a Message string"));
    }
    Ok(body.to_owned())
}

/// Parses a message body (envelope or raw) into `T`, naming what is wrong with it.
pub fn parse_body<T: serde::de::DeserializeOwned>(record: &SqsMessage) -> Result<T, ProcessingError> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| ProcessingError::rejected(Code::MalformedMessage, "message has no body"))?;
    let inner = unwrap_sns_envelope(body)?;
    serde_json::from_str(&inner).map_err(|e| {
        ProcessingError::rejected(
            Code::MalformedMessage,
            format!("message does not match the contract: {e}"),
        )
    })
}

/// How many times SQS has delivered this message, this delivery included (its
/// `ApproximateReceiveCount`); 1 when the attribute is absent, as in a hand-written event.
/// Compared with the queue's `maxReceiveCount`, it tells a function that this delivery is the
/// last one before the message moves to the dead-letter queue.
pub fn deliveries(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
}

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Processed, or rejected/failed and reported: delete it.
    Done,
    /// Hand it back to the queue (a retryable fault, or no time left).
    Retry,
}

/// Runs `handle` on each message in turn (ffmpeg already uses every core, so messages are not
/// processed concurrently) and collects the messages to retry. A message is not started when
/// less than `min_time_per_message` is left before `deadline`.
pub async fn process_batch<F, Fut>(
    event: SqsEvent,
    deadline: Deadline,
    min_time_per_message: Duration,
    mut handle: F,
) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: Future<Output = Disposition>,
{
    let mut response = SqsBatchResponse::default();
    let total = event.records.len();
    let mut out_of_time = false;
    for (index, record) in event.records.into_iter().enumerate() {
        let message_id = record.message_id.clone().unwrap_or_default();
        if message_id.is_empty() {
            // Lambda always sets the id; without one the message cannot be acknowledged on its
            // own. Reporting an empty identifier makes Lambda retry the whole batch, which
            // loses nothing (outputs are idempotent), where skipping it would delete it unseen.
            tracing::error!(index, "SQS record without a messageId; the whole batch will be retried");
            response.add_failure(message_id);
            continue;
        }
        if out_of_time || deadline.remaining() < min_time_per_message {
            out_of_time = true;
            tracing::warn!(%message_id, remaining = ?deadline.remaining(), "not enough time left; message handed back");
            response.add_failure(message_id);
            continue;
        }
        let span = tracing::info_span!("message", %message_id, index, total);
        if handle(record).instrument(span).await == Disposition::Retry {
            response.add_failure(message_id);
        }
    }
    response
}

/// The message attribute naming the [`crate::Code`] a message was parked in its dead-letter queue
/// with (see [`park_in_dead_letter_queue`]); readers such as the end-to-end tests match on it.
pub const REJECTION_CODE: &str = "rejection_code";

/// Moves a message that can never be processed (malformed, not the contract) to the
/// dead-letter queue at once, with the reason as message attributes, instead of retrying it
/// into the DLQ. Failing that, the message is retried, so it is never dropped.
pub async fn park_in_dead_letter_queue(
    sqs: &aws_sdk_sqs::Client,
    dead_letter_queue_url: &str,
    record: &SqsMessage,
    err: &ProcessingError,
) -> Disposition {
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .expect("data type is set")
    };
    let sent = sqs
        .send_message()
        .queue_url(dead_letter_queue_url)
        .message_body(
            record
                .body
                .clone()
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "(empty body)".to_owned()),
        )
        .message_attributes(REJECTION_CODE, attribute(err.code.as_str()))
        .message_attributes("rejection_reason", attribute(&truncate_chars(&err.reason, 1000)))
        .message_attributes(
            "original_message_id",
            attribute(record.message_id.as_deref().unwrap_or("")),
        )
        .send()
        .await;
    match sent {
        Ok(_) => {
            tracing::warn!(code = %err.code(), reason = %err.reason, "message rejected and parked in the dead-letter queue");
            Disposition::Done
        }
        Err(e) => {
            tracing::error!(error = %crate::error::DisplayErrorChain(&e), "could not park the rejected message; it will be retried");
            Disposition::Retry
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ids: &[&str]) -> SqsEvent {
        let records: Vec<_> = ids
            .iter()
            .map(|id| serde_json::json!({"messageId": id, "body": format!("{{\"n\":\"{id}\"}}")}))
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    #[tokio::test]
    async fn only_retryable_messages_are_reported() {
        let response = process_batch(
            event(&["a", "b", "c"]),
            Deadline::after(Duration::from_secs(60)),
            Duration::from_secs(1),
            |record| async move {
                if record.message_id.as_deref() == Some("b") {
                    Disposition::Retry
                } else {
                    Disposition::Done
                }
            },
        )
        .await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["b"]);
    }

    #[tokio::test]
    async fn messages_without_time_left_are_handed_back_unstarted() {
        let mut started = Vec::new();
        let response = process_batch(
            event(&["a", "b"]),
            Deadline::after(Duration::from_secs(5)),
            Duration::from_secs(30),
            |record| {
                started.push(record.message_id.clone().unwrap());
                async { Disposition::Done }
            },
        )
        .await;
        assert!(started.is_empty());
        assert_eq!(response.batch_item_failures.len(), 2);
    }

    #[tokio::test]
    async fn a_record_without_an_id_is_never_a_silent_success() {
        let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [{"body": "{}"}]})).unwrap();
        let response = process_batch(
            event,
            Deadline::after(Duration::from_secs(60)),
            Duration::from_secs(1),
            |_| async { Disposition::Done },
        )
        .await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(response.batch_item_failures[0].item_identifier, "");
    }

    #[test]
    fn sns_envelope_is_unwrapped_and_raw_bodies_pass() {
        // ministack writes the envelope with Python-style spacing: parse, never compare strings.
        let envelope = r#"{"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "Message": "{\"a\": 1}"}"#;
        assert_eq!(unwrap_sns_envelope(envelope).unwrap(), r#"{"a": 1}"#);
        assert_eq!(unwrap_sns_envelope(r#"{"a":1}"#).unwrap(), r#"{"a":1}"#);
        assert_eq!(
            unwrap_sns_envelope("not json").unwrap_err().code(),
            Code::MalformedMessage
        );
    }
}
