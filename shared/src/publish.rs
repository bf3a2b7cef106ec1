//! Publishing JSON messages on SNS topics, with string message attributes for filter policies.

use aws_sdk_sns::types::MessageAttributeValue;
use serde::Serialize;

use crate::{Code, ProcessingError};

/// A message attribute: SNS filter policies match strings exactly and numbers by range.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    Text(String),
    Number(u64),
}

impl From<String> for Attribute {
    fn from(value: String) -> Self {
        Attribute::Text(value)
    }
}

/// Publishes `message` as JSON on `topic_arn`. Any failure is retryable: the caller keeps the
/// triggering message (batch failure / async retry) so the result is never lost.
pub async fn publish_json(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    message: &impl Serialize,
    attributes: &[(&str, Attribute)],
) -> Result<String, ProcessingError> {
    let body =
        serde_json::to_string(message).map_err(|e| ProcessingError::failed(Code::SerializeFailed, e.to_string()))?;
    let mut request = sns.publish().topic_arn(topic_arn).message(body);
    for (name, value) in attributes {
        let (data_type, text) = match value {
            Attribute::Text(text) => ("String", text.clone()),
            Attribute::Number(number) => ("Number", number.to_string()),
        };
        let value = MessageAttributeValue::builder()
            .data_type(data_type)
            .string_value(text)
            .build()
            .map_err(|e| ProcessingError::failed(Code::SerializeFailed, e.to_string()))?;
        request = request.message_attributes(*name, value);
    }
    let output = request
        .send()
        .await
        .map_err(|e| ProcessingError::from_sdk("SNS Publish", e))?;
    Ok(output.message_id.unwrap_or_default())
}
