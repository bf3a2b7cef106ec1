//! Answering a message: carrying out its [`Step`]. A result is published once per outcome
//! (the ledger, [`shared::ledger`]), a re-queued copy is sent after its report so that exactly
//! one copy is in flight, and a retryable fault hands the message back with a growing delay
//! (on its last delivery, after reporting that it gave up: the message then rests in the DLQ).

use aws_lambda_events::event::sqs::SqsMessage;
use shared::contracts::clip::{ClipResult, ClipStatus, JOB};
use shared::ledger::{OutcomeKey, Publication};
use shared::sqs::{deliveries, park_in_dead_letter_queue, Disposition};
use shared::ProcessingError;

use crate::decide::{backoff_secs, given_up, Step};
use crate::request::ClipRequest;
use crate::Trimmer;

impl Trimmer {
    /// A body that is not a valid request: its `result` on the topic, and a body that is not a
    /// request at all (`park`) is also parked in the DLQ with `err`, so nothing of it is lost.
    pub(crate) async fn reject_message(
        &self,
        record: &SqsMessage,
        result: ClipResult,
        err: ProcessingError,
        park: bool,
    ) -> Disposition {
        tracing::warn!(code = %err.code, reason = %err.reason, "request rejected");
        if self.publish(&result, record).await.is_err() {
            return Disposition::Retry;
        }
        if park {
            return park_in_dead_letter_queue(&self.sqs, &self.config.dead_letter_queue_url, record, &err).await;
        }
        Disposition::Done
    }

    /// Carries out what [`crate::decide`] made of a request.
    pub(crate) async fn carry_out(&self, step: Step, record: &SqsMessage) -> Disposition {
        match step {
            Step::Report(result) => match self.publish(&result, record).await {
                Ok(_) => Disposition::Done,
                Err(_) => Disposition::Retry,
            },
            Step::Requeue {
                request,
                delay_secs,
                report,
            } => {
                // Report first: if the copy then cannot be sent, the original comes back and
                // is decided again; sending first could leave two copies in flight.
                if let Some(report) = &report {
                    match self.publish(report, record).await {
                        Ok(Publication::Published(_) | Publication::AlreadyPublished { by_this_delivery: true }) => {}
                        Ok(_) => {
                            // Another delivery of this very request reported this attempt and
                            // re-queued it: a second copy would double the chain.
                            tracing::info!("duplicate of a request already re-queued; not re-queued again");
                            return Disposition::Done;
                        }
                        Err(_) => return Disposition::Retry,
                    }
                }
                match self.requeue(&request, delay_secs).await {
                    Ok(()) => Disposition::Done,
                    Err(err) => {
                        tracing::error!(code = %err.code, reason = %err.reason, "could not re-queue; the original will be retried");
                        Disposition::Retry
                    }
                }
            }
            Step::Retry { request, err } => {
                let deliveries = deliveries(record);
                if deliveries >= self.config.max_receive_count {
                    tracing::error!(code = %err.code, reason = %err.reason, deliveries, "last delivery failed; answered as failed, message left for the DLQ");
                    // Published or not, the message goes on to the DLQ: kept for a redrive.
                    let _ = self.publish(&given_up(&request, &err, deliveries), record).await;
                    return Disposition::Retry;
                }
                let receives = i32::try_from(deliveries).unwrap_or(i32::MAX);
                let delay = backoff_secs(self.config.retry_backoff_secs, receives);
                tracing::warn!(code = %err.code, reason = %err.reason, receives, delay, "retryable fault; message handed back");
                self.delay_redelivery(record, delay).await;
                Disposition::Retry
            }
        }
    }

    async fn requeue(&self, request: &ClipRequest, delay_secs: i32) -> Result<(), ProcessingError> {
        let body = serde_json::to_string(request).expect("a request serializes");
        self.sqs
            .send_message()
            .queue_url(&self.config.queue_url)
            .message_body(body)
            .delay_seconds(delay_secs)
            .send()
            .await
            .map_err(|e| ProcessingError::from_sdk("SQS SendMessage", e))?;
        tracing::info!(
            delay_secs,
            retries = request.retry_timestamps.len(),
            "request re-queued"
        );
        Ok(())
    }

    /// The backoff: the message stays invisible for `delay` seconds before its next delivery.
    async fn delay_redelivery(&self, record: &SqsMessage, delay: i32) {
        let Some(receipt_handle) = record.receipt_handle.as_deref() else {
            return;
        };
        if let Err(err) = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.config.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(delay)
            .send()
            .await
        {
            // Not fatal: the queue's own visibility timeout applies instead.
            tracing::warn!(error = %shared::error::DisplayErrorChain(&err), "could not set the retry delay");
        }
    }

    /// Publishes `result` once per outcome (see [`shared::ledger`]).
    async fn publish(&self, result: &ClipResult, record: &SqsMessage) -> Result<Publication, ProcessingError> {
        let outcome = outcome(result, record.body.as_deref().unwrap_or(""));
        let delivery = record.message_id.as_deref().unwrap_or("");
        match self
            .ledger
            .publish_once(
                &self.sns,
                &self.config.topic_arn,
                &outcome,
                delivery,
                result,
                &result.attributes(),
            )
            .await
        {
            Ok(publication) => {
                tracing::info!(status = %result.status, code = result.reason_code(), publication = publication.as_str(), "result answered");
                Ok(publication)
            }
            Err(err) => {
                tracing::error!(code = %err.code, reason = %err.reason, "could not publish the result; message handed back");
                Err(err)
            }
        }
    }
}

/// Which outcome `result` reports, for the ledger: the request (or, for what is not a request,
/// the body itself) and what it came to. A pending result also counts its retries, since each
/// re-queued attempt reports its own.
fn outcome(result: &ClipResult, body: &str) -> OutcomeKey {
    let status = result.status.as_str();
    match (
        &result.clip_id,
        &result.camera_id,
        result.start_timestamp_in_ms,
        result.end_timestamp_in_ms,
    ) {
        (Some(clip_id), Some(camera_id), Some(start), Some(end)) => {
            let retries = match result.status {
                ClipStatus::Pending => result.retry_timestamps.as_ref().map_or(0, Vec::len).to_string(),
                _ => String::new(),
            };
            OutcomeKey::new([
                JOB,
                clip_id,
                camera_id,
                &start.to_string(),
                &end.to_string(),
                status,
                result.reason_code(),
                &retries,
            ])
        }
        _ => OutcomeKey::new(["clip-message", body, status, result.reason_code()]),
    }
}

#[cfg(test)]
mod tests {
    use shared::Code;

    use super::*;

    #[test]
    fn each_pending_attempt_is_an_outcome_of_its_own_and_a_duplicate_is_not() {
        let request: ClipRequest = serde_json::from_str(
            r#"{"clipId":"c1","cameraId":"cam-1","startTimestampInMs":1000,"endTimestampInMs":5000}"#,
        )
        .unwrap();
        let pending = |retries: &[i64]| {
            let mut result =
                ClipResult::for_request(&request, ClipStatus::Pending).with_reason(Code::ClipPending, "later");
            result.retry_timestamps = Some(retries.to_vec());
            outcome(&result, "body").hash().to_owned()
        };
        assert_eq!(pending(&[7]), pending(&[7]), "a duplicate delivery");
        assert_ne!(pending(&[7]), pending(&[7, 8]), "the next attempt");
        let failed = |at_retry: &[i64]| {
            let mut result =
                ClipResult::for_request(&request, ClipStatus::Failed).with_reason(Code::ClipFailed, "ffmpeg");
            result.retry_timestamps = Some(at_retry.to_vec());
            outcome(&result, "body").hash().to_owned()
        };
        assert_eq!(failed(&[7]), failed(&[7, 8]), "one final answer per request");
        let not_a_request = |body: &str| {
            let result = ClipResult::for_ids(None, None, ClipStatus::Invalid);
            outcome(&result, body).hash().to_owned()
        };
        assert_ne!(not_a_request("x"), not_a_request("y"), "told apart by their bodies");
    }
}
