//! What the local stack can tell a test about how its functions fared, beyond their outputs:
//! a direct Lambda Invoke with its `X-Amz-Function-Error`, the `AWS/Lambda` `Errors` metric,
//! the functions' CloudWatch Logs, and messages found in a queue without taking them.
//!
//! Invoke goes through the Lambda SDK client. The metric and log reads are plain SigV4-signed
//! HTTP (signed in [`crate::http::post`]): CloudWatch's current SDK speaks
//! Smithy RPC v2 CBOR, while the Query protocol read here is the one the emulator is known to
//! answer; and one FilterLogEvents call did not seem worth another SDK crate in the test build.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::BoxError;

/// A signed POST to the local stack: status and body.
async fn signed_post(
    path: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), BoxError> {
    let url = format!("{}{path}", local_services::stack_endpoint().trim_end_matches('/'));
    let response = crate::http::post(&url, headers, body, Some(service)).await?;
    Ok((response.status, response.body))
}

/// The answer of a synchronous Lambda Invoke.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `X-Amz-Function-Error` (`Unhandled`/`Handled`) when the invocation ended in an error.
    pub function_error: Option<String>,
    /// The function's answer, or its error report (`errorType`, `errorMessage`).
    pub payload: Value,
}

impl Invocation {
    /// The `errorType` of a failed invocation.
    pub fn error_type(&self) -> Option<&str> {
        self.function_error.as_ref()?;
        Some(self.payload["errorType"].as_str().unwrap_or(""))
    }
}

/// Invokes `function_name` synchronously (RequestResponse) with `payload` as raw bytes (any
/// text, JSON or not), as the Lambda API's Invoke does.
pub async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function_name: &str,
    payload: &[u8],
) -> Result<Invocation, BoxError> {
    // Throttled (the function is at its reserved concurrency): retried, as any caller would.
    let started = Instant::now();
    let output = loop {
        let answer = lambda
            .invoke()
            .function_name(function_name)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_vec()))
            .send()
            .await;
        match answer {
            Ok(output) => break output,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_too_many_requests_exception())
                    && started.elapsed() < Duration::from_secs(120) =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Err(err) => {
                return Err(format!("invoke {function_name}: {}", shared::error::DisplayErrorChain(&err)).into())
            }
        }
    };
    let body = output.payload().map(|b| b.as_ref()).unwrap_or_default();
    let payload =
        serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    Ok(Invocation {
        function_error: output.function_error().map(str::to_owned),
        payload,
    })
}

/// The sum of `AWS/Lambda` `Errors` for `function_name` between `start` and `end`
/// (CloudWatch GetMetricStatistics, one-second periods). ministack records it for synchronous
/// Invokes only (not for its SQS poller, S3 notifications or EventBridge targets), which is why
/// a test also reads the functions' logs. It also counts a throttled Invoke (429) as an error,
/// which AWS does not: see [`lambda_throttles`].
pub async fn lambda_errors(function_name: &str, start: SystemTime, end: SystemTime) -> Result<f64, BoxError> {
    lambda_metric_sum("Errors", function_name, start, end).await
}

/// The sum of `AWS/Lambda` `Throttles` for `function_name` between `start` and `end`.
pub async fn lambda_throttles(function_name: &str, start: SystemTime, end: SystemTime) -> Result<f64, BoxError> {
    lambda_metric_sum("Throttles", function_name, start, end).await
}

async fn lambda_metric_sum(
    metric: &str,
    function_name: &str,
    start: SystemTime,
    end: SystemTime,
) -> Result<f64, BoxError> {
    let iso =
        |t: SystemTime| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "GetMetricStatistics")
        .append_pair("Version", "2010-08-01")
        .append_pair("Namespace", "AWS/Lambda")
        .append_pair("MetricName", metric)
        .append_pair("Dimensions.member.1.Name", "FunctionName")
        .append_pair("Dimensions.member.1.Value", function_name)
        .append_pair("StartTime", &iso(start))
        .append_pair("EndTime", &iso(end + Duration::from_secs(1)))
        .append_pair("Period", "1")
        .append_pair("Statistics.member.1", "Sum")
        .finish();
    let (status, body) = signed_post(
        "/",
        "monitoring",
        &[("content-type", "application/x-www-form-urlencoded")],
        form.into_bytes(),
    )
    .await?;
    let text = String::from_utf8_lossy(&body);
    if status != 200 {
        return Err(format!("GetMetricStatistics answered {status}: {text}").into());
    }
    // <Datapoints><member>…<Sum>1.0</Sum>…</member></Datapoints>
    Ok(text
        .split("<Sum>")
        .skip(1)
        .filter_map(|rest| rest.split("</Sum>").next()?.trim().parse::<f64>().ok())
        .fold(0.0, |sum, n| sum + n))
}

/// Every log line written to `log_group` since `since` (CloudWatch Logs FilterLogEvents).
pub async fn log_lines(log_group: &str, since: SystemTime) -> Result<Vec<String>, BoxError> {
    let start_ms = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = serde_json::json!({"logGroupName": log_group, "startTime": start_ms});
        if let Some(token) = &token {
            request["nextToken"] = token.clone().into();
        }
        let (status, body) = signed_post(
            "/",
            "logs",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "Logs_20140328.FilterLogEvents"),
            ],
            request.to_string().into_bytes(),
        )
        .await?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
        if status != 200 {
            if answer["__type"].as_str().unwrap_or("").contains("ResourceNotFound") {
                return Ok(lines);
            }
            return Err(format!("FilterLogEvents answered {status}: {answer}").into());
        }
        for event in answer["events"].as_array().into_iter().flatten() {
            lines.push(event["message"].as_str().unwrap_or("").to_owned());
        }
        match answer["nextToken"].as_str() {
            Some(next) if Some(next) != token.as_deref() && !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(lines),
        }
    }
}

/// Lines of a function's log that only a crash writes: a panic, a payload the runtime could not
/// read, a timeout, a process that exited.
pub fn crash_lines(lines: &[String]) -> Vec<String> {
    const MARKERS: [&str; 6] = [
        "panicked",
        "deserialization into LambdaEvent",
        "Failed to parse raw JSON event",
        "Task timed out",
        "Runtime.ExitError",
        "Sandbox.Timedout",
    ];
    lines
        .iter()
        .filter(|line| MARKERS.iter().any(|m| line.contains(m)))
        .cloned()
        .collect()
}

/// A message found in a queue.
#[derive(Debug, Clone)]
pub struct Found {
    pub body: String,
    /// String message attributes (`rejection_code`, …).
    pub attributes: HashMap<String, String>,
}

/// Looks through `queue_url` for a message whose body contains each needle, until all are found
/// or `timeout` passes. Messages are received with a short visibility timeout (so the search
/// walks past old ones) and never deleted. Returns what was found, by needle.
pub async fn find_in_queue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    needles: &[String],
    timeout: Duration,
) -> Result<HashMap<String, Found>, BoxError> {
    let started = Instant::now();
    let mut found: HashMap<String, Found> = HashMap::new();
    while found.len() < needles.len() && started.elapsed() < timeout {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(2)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        for message in messages {
            let body = message.body.clone().unwrap_or_default();
            for needle in needles {
                if !found.contains_key(needle) && body.contains(needle.as_str()) {
                    let attributes = message
                        .message_attributes
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v.string_value?)))
                        .collect();
                    found.insert(
                        needle.clone(),
                        Found {
                            body: body.clone(),
                            attributes,
                        },
                    );
                }
            }
        }
    }
    Ok(found)
}
