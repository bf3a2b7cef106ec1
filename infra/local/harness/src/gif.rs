//! The GIF API as a caller sees it: SigV4-signed POSTs to the Function URL (its auth type is
//! AWS_IAM), over real HTTP, plus polling a task until it settles.

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use shared::contracts::gif::{TaskAccepted, TaskStatusAnswer};

use crate::{http, BoxError, StackOutputs};

/// `https://<url-id>.lambda-url.<region>.on.aws/` (what the stack reports) → the local
/// emulator's path-style address for the same URL.
pub fn local_function_url(function_url: &str) -> Result<String, BoxError> {
    let host = function_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("not a function URL: {function_url}"))?;
    let url_id = host.split('.').next().unwrap_or_default();
    Ok(format!(
        "{}/_aws/lambda-url/{url_id}/",
        local_services::url(local_services::stack_port())
    ))
}

pub struct GifApi {
    pub url: String,
}

impl GifApi {
    pub fn from_outputs(outputs: &StackOutputs) -> Result<GifApi, BoxError> {
        Ok(GifApi {
            url: local_function_url(outputs.get("GifApiUrl"))?,
        })
    }

    /// A signed POST of `body` (any text; JSON or not): the answer's status and JSON body.
    pub async fn call(&self, body: &str) -> Result<(u16, Value), BoxError> {
        self.send(body, true).await
    }

    /// The same request without a signature (what an anonymous caller sends).
    pub async fn call_unsigned(&self, body: &str) -> Result<(u16, Value), BoxError> {
        self.send(body, false).await
    }

    async fn send(&self, body: &str, signed: bool) -> Result<(u16, Value), BoxError> {
        let response = http::post(
            &self.url,
            &[("content-type", "application/json")],
            body.as_bytes().to_vec(),
            signed.then_some("lambda"),
        )
        .await?;
        Ok((response.status, response.json()))
    }

    /// `convert` → the task id (an error with the answer when it is not 202 or not the
    /// contract's answer: callers are tests and the demo, which want to see why).
    pub async fn convert(&self, request: Value) -> Result<String, BoxError> {
        let (status, answer) = self.call(&request.to_string()).await?;
        if status != 202 {
            return Err(format!("convert answered {status}: {answer}").into());
        }
        Ok(parse::<TaskAccepted>("convert", answer)?.task_id)
    }

    /// `get_task_status` → the answer (an error when it is not 200 or not the contract's answer).
    pub async fn status(&self, task_id: &str) -> Result<TaskStatusAnswer, BoxError> {
        let body = serde_json::json!({"action": "get_task_status", "task_id": task_id});
        let (status, answer) = self.call(&body.to_string()).await?;
        if status != 200 {
            return Err(format!("get_task_status answered {status}: {answer}").into());
        }
        parse("get_task_status", answer)
    }

    /// Polls until the task is final (DONE or FAILED); `on_tick` sees each answer (progress
    /// display).
    pub async fn wait(
        &self,
        task_id: &str,
        timeout: Duration,
        mut on_tick: impl FnMut(&TaskStatusAnswer),
    ) -> Result<TaskStatusAnswer, BoxError> {
        let started = Instant::now();
        loop {
            let answer = self.status(task_id).await?;
            on_tick(&answer);
            if answer.status.is_final() {
                return Ok(answer);
            }
            if started.elapsed() > timeout {
                return Err(format!("task {task_id} not settled after {timeout:?}: {answer:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// `answer` as the contract `T` of `action`'s answers.
fn parse<T: serde::de::DeserializeOwned>(action: &str, answer: Value) -> Result<T, BoxError> {
    serde_json::from_value(answer.clone())
        .map_err(|e| format!("{action} answered what is not its contract ({e}): {answer}").into())
}

/// A QUEUED task written straight into the tasks table, as the API writes one (an hour to
/// live): for putting jobs on the queue without the API in front. Returns its id.
pub async fn put_queued_task(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<String, BoxError> {
    use aws_sdk_dynamodb::types::AttributeValue;
    use shared::gif::{attr, TaskStatus};
    let task_id = uuid::Uuid::new_v4().to_string();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_secs();
    dynamodb
        .put_item()
        .table_name(table)
        .item(attr::TASK_ID, AttributeValue::S(task_id.clone()))
        .item(attr::STATUS, AttributeValue::S(TaskStatus::Queued.as_str().into()))
        .item(attr::EXPIRES_AT, AttributeValue::N((now + 3600).to_string()))
        .item(attr::PROGRESS, AttributeValue::N("0".into()))
        .send()
        .await?;
    Ok(task_id)
}

/// GETs `url` into memory: how a user's browser would follow a GIF link.
pub async fn download(url: &str) -> Result<(u16, Vec<u8>), BoxError> {
    let response = http::get(url).await?;
    Ok((response.status, response.body))
}

/// The GIF test sources of the local services (allow-listed in the local deployment).
pub fn gif_sources_url(path_and_query: &str) -> String {
    format!(
        "{}{path_and_query}",
        local_services::url(local_services::Ports::from_env().gif_sources)
    )
}

/// A presigned GET for an object in the local S3 (loopback, allow-listed): what a user would
/// hand the API as `src_url`.
pub async fn presigned_get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String, BoxError> {
    let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(3600))?;
    Ok(s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(config)
        .await?
        .uri()
        .to_owned())
}
