//! One error type for the whole suite, shaped by the one question a caller has to answer:
//! *does retrying help?*
//!
//! * [`ErrorKind::Retryable`]: a fault outside the input (throttling, network, a timeout, a
//!   service that is down). The message goes back to its queue; after the redrive limit it
//!   rests in the dead-letter queue, where it can be redriven once the fault is fixed.
//! * [`ErrorKind::Rejected`]: the input can never succeed (not a video, corrupt, malformed).
//!   It is answered with a named rejection on the results topic and the message is done.
//! * [`ErrorKind::Failed`]: the input looked fine but processing it failed in a way a retry
//!   will not change (ffmpeg gave up on a stream ffprobe accepted). Reported as `failed`.

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use crate::codes::Code;
use crate::wire::wire_enum;

wire_enum! {
    /// Whether retrying can help; see the module docs. Spelled in a failed invocation's
    /// `errorType` (`rejected.NOT_VIDEO`).
    pub enum ErrorKind {
        Retryable = "retryable",
        Rejected = "rejected",
        Failed = "failed",
    }
}

/// An error with a stable, machine-readable [`Code`] (e.g. `NOT_VIDEO`, `AWS_TIMEOUT`) and a
/// human-readable reason. The code is what results and logs carry; tests match on it.
#[derive(Debug, thiserror::Error)]
#[error("{code} ({kind}): {reason}")]
pub struct ProcessingError {
    pub kind: ErrorKind,
    pub code: Code,
    pub reason: String,
}

impl ProcessingError {
    pub fn new(kind: ErrorKind, code: Code, reason: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            reason: reason.into(),
        }
    }

    pub fn retryable(code: Code, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Retryable, code, reason)
    }

    pub fn rejected(code: Code, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, code, reason)
    }

    pub fn failed(code: Code, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, code, reason)
    }

    /// This fault on a message's last delivery (the queue's `maxReceiveCount`): a failure with
    /// the same code, whose reason says how many deliveries were tried and that the message is
    /// kept in the dead-letter queue, for a redrive once the fault is fixed.
    pub fn given_up_after(&self, deliveries: u32) -> Self {
        Self::failed(
            self.code,
            format!(
                "gave up after {deliveries} deliveries; the message is kept in the dead-letter queue for a redrive: {}",
                self.reason
            ),
        )
    }

    /// The code, as the field holds it; most call sites in the functions read it this way.
    pub fn code(&self) -> Code {
        self.code
    }

    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }

    /// Classifies an AWS SDK error. Transport faults, timeouts, throttling and 5xx are
    /// retryable. Everything else the service refused is retryable too unless the caller maps
    /// it (see [`Self::from_sdk_with`]): an `AccessDenied` or a missing queue is a deployment
    /// fault, and a message kept in the DLQ can be redriven once it is fixed, whereas a message
    /// dropped as "rejected" is gone.
    pub fn from_sdk<E>(operation: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self::from_sdk_with(operation, err, |_, _| None)
    }

    /// Like [`Self::from_sdk`], with a hook that maps a service error code (and HTTP status) to a
    /// permanent outcome, e.g. `NoSuchKey` on a source object → `Rejected(SOURCE_MISSING)`.
    pub fn from_sdk_with<E>(
        operation: &str,
        err: SdkError<E, HttpResponse>,
        map_service_error: impl FnOnce(&str, Option<u16>) -> Option<ProcessingError>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &err {
            SdkError::TimeoutError(_) => Self::retryable(Code::AwsTimeout, format!("{operation}: request timed out")),
            SdkError::DispatchFailure(failure) => Self::retryable(
                Code::AwsUnreachable,
                format!("{operation}: could not reach the service: {failure:?}"),
            ),
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("Unknown").to_owned();
                let message = service.err().message().unwrap_or("").to_owned();
                let status = status_of(&err);
                if let Some(mapped) = map_service_error(&code, status) {
                    return mapped;
                }
                Self::retryable(
                    Code::AwsServiceError,
                    format!("{operation}: {code} (HTTP {}): {message}", fmt_status(status)),
                )
            }
            _ => {
                let status = status_of(&err);
                if status == Some(404) {
                    if let Some(mapped) = map_service_error("NotFound", status) {
                        return mapped;
                    }
                }
                Self::retryable(
                    Code::AwsError,
                    format!("{operation} (HTTP {}): {}", fmt_status(status), DisplayErrorChain(&err)),
                )
            }
        }
    }
}

fn status_of<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

fn fmt_status(status: Option<u16>) -> String {
    status.map_or_else(|| "-".to_owned(), |s| s.to_string())
}

/// Displays an error with its `source()` chain, which the SDK's own `Display` leaves out.
pub struct DisplayErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for DisplayErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(inner) = source {
            write!(f, ": {inner}")?;
            source = inner.source();
        }
        Ok(())
    }
}

/// Lambda's error report carries the kind and the code, so a failed invocation's
/// `errorType` already says whether the retry that follows can help.
impl From<ProcessingError> for lambda_runtime::Diagnostic {
    fn from(err: ProcessingError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: format!("{}.{}", err.kind, err.code),
            error_message: err.reason,
        }
    }
}

/// The first `max_chars` characters of `text` (never cuts a character in half), for reasons
/// and messages that have a size limit.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_spelling() {
        use crate::wire::{assert_wire_enum, Case};
        assert_wire_enum(ErrorKind::ALL, ErrorKind::as_str, Case::Snake);
    }

    #[test]
    fn display_names_code_kind_and_reason() {
        let err = ProcessingError::rejected(Code::NotVideo, "no video stream");
        assert_eq!(err.to_string(), "NOT_VIDEO (rejected): no video stream");
        assert!(!err.is_retryable());
    }

    #[test]
    fn diagnostic_error_type_carries_kind_and_code() {
        let diagnostic: lambda_runtime::Diagnostic = ProcessingError::retryable(Code::AwsTimeout, "slow").into();
        assert_eq!(diagnostic.error_type, "retryable.AWS_TIMEOUT");
        assert_eq!(diagnostic.error_message, "slow");
    }
}
