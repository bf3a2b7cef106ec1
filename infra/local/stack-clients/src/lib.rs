//! The local stack as any client reaches it: SDK clients built from the environment that
//! `infra/local/stack.sh run` sets (endpoint, dummy credentials, region), a tap on an SNS topic
//! (a private queue subscribed to it, exactly as a user's own subscriber would be), and listing a
//! bucket. Shared by the local stand-ins (`local-services`, whose origin page watches the
//! results topic) and the test harness (`harness`), which is why it is a crate of its own: the
//! stand-ins must not depend on the test harness.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use shared::contracts::PipelineResult;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Clients for the local stack (endpoint and credentials from the environment that
/// `infra/local/stack.sh run` sets).
#[derive(Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// MediaConvert at `AWS_ENDPOINT_URL_MEDIACONVERT` (the local MediaConvert under `stack.sh run`).
    pub mediaconvert: aws_sdk_mediaconvert::Client,
    /// Lambda, for invoking deployed functions as S3 or EventBridge would.
    pub lambda: aws_sdk_lambda::Client,
    /// Step Functions: the executions of segmented renditions.
    pub sfn: aws_sdk_sfn::Client,
}

impl Clients {
    pub async fn from_env() -> Self {
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            // Never talk to a real account by accident.
            std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
        }
        for (name, value) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ] {
            if std::env::var_os(name).is_none() {
                std::env::set_var(name, value);
            }
        }
        let sdk = shared::clients::load_sdk_config().await;
        Clients {
            s3: shared::clients::s3_client(&sdk),
            sns: shared::clients::sns_client(&sdk),
            sqs: shared::clients::sqs_client(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            mediaconvert: aws_sdk_mediaconvert::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            sfn: aws_sdk_sfn::Client::new(&sdk),
        }
    }
}

/// What [`Tap::wait_for`] heard, and whether it was all that was waited for.
#[derive(Debug)]
pub struct Waited {
    pub values: Vec<serde_json::Value>,
    pub complete: bool,
}

/// A private SQS queue subscribed (raw delivery) to a topic: how a test or the demo watches
/// what the system publishes, exactly as a user's own subscriber would.
pub struct Tap {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    pub queue_url: String,
    subscription_arn: String,
    /// Messages received but not (yet) asked for: receiving deletes them from the queue, so a
    /// later [`Tap::take_json`] or [`Tap::collect_results`] must still see them here.
    unclaimed: std::sync::Mutex<Vec<serde_json::Value>>,
}

impl Tap {
    pub async fn subscribe(clients: &Clients, topic_arn: &str, name: &str) -> Result<Tap, BoxError> {
        let queue_name = format!("tap-{}-{}", sanitize(name), unique_suffix());
        let queue_url = clients
            .sqs
            .create_queue()
            .queue_name(&queue_name)
            .send()
            .await?
            .queue_url
            .unwrap_or_default();
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?;
        let queue_arn = attributes
            .attributes
            .unwrap_or_default()
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .unwrap_or_default();
        let subscription = clients
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .return_subscription_arn(true)
            .send()
            .await?;
        Ok(Tap {
            sqs: clients.sqs.clone(),
            sns: clients.sns.clone(),
            queue_url,
            subscription_arn: subscription.subscription_arn.unwrap_or_default(),
            unclaimed: Default::default(),
        })
    }

    /// Receives whatever has arrived (up to 10 messages, waiting at most 1 s), deleting it.
    pub async fn poll(&self) -> Result<Vec<serde_json::Value>, BoxError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        let mut bodies = Vec::new();
        for message in received.messages.unwrap_or_default() {
            if std::env::var_os("DEVSTACK_DEBUG").is_some() {
                eprintln!("tap {}: {:?}", self.queue_url, message.body);
            }
            if let Some(body) = &message.body {
                bodies.push(serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.clone())));
            }
            if let Some(handle) = message.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
        Ok(bodies)
    }

    /// Polls once; returns the messages (any JSON) that `wanted` accepts, and keeps the others
    /// for later calls.
    pub async fn take_json(
        &self,
        mut wanted: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<Vec<serde_json::Value>, BoxError> {
        // Claim from the store under the lock, then poll: a concurrent waiter never finds the
        // store emptied by another one's poll in progress.
        let mut taken = {
            let mut store = self.unclaimed.lock().unwrap();
            let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut *store).into_iter().partition(|v| wanted(v));
            *store = kept;
            taken
        };
        let (polled, kept): (Vec<_>, Vec<_>) = self.poll().await?.into_iter().partition(|v| wanted(v));
        self.unclaimed.lock().unwrap().extend(kept);
        taken.extend(polled);
        Ok(taken)
    }

    /// The one way to wait for what the topic carries: takes the messages `wanted` accepts
    /// (others stay for other waiters, see [`Tap::take_json`]) until `done` says they are
    /// complete or `timeout` passes, calling `on_tick` after each poll (about once a second)
    /// with what has arrived. Returns them, and whether `done` was reached: the caller judges a
    /// short answer (an error, a failed assertion, or a catalogue row).
    pub async fn wait_for_ticking(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&serde_json::Value) -> bool,
        mut done: impl FnMut(&[serde_json::Value]) -> bool,
        mut on_tick: impl FnMut(&[serde_json::Value], Duration),
    ) -> Result<Waited, BoxError> {
        let started = Instant::now();
        let mut values = Vec::new();
        loop {
            values.extend(self.take_json(&mut wanted).await?);
            on_tick(&values, started.elapsed());
            if done(&values) {
                return Ok(Waited { values, complete: true });
            }
            if started.elapsed() > timeout {
                return Ok(Waited {
                    values,
                    complete: false,
                });
            }
        }
    }

    /// [`Tap::wait_for_ticking`] without progress.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        wanted: impl FnMut(&serde_json::Value) -> bool,
        done: impl FnMut(&[serde_json::Value]) -> bool,
    ) -> Result<Waited, BoxError> {
        self.wait_for_ticking(timeout, wanted, done, |_, _| {}).await
    }

    /// Collects pipeline results that `keep` accepts until `done` says the set is complete;
    /// an error naming what arrived when `timeout` passes first.
    pub async fn collect_results(
        &self,
        timeout: Duration,
        mut keep: impl FnMut(&PipelineResult) -> bool,
        mut done: impl FnMut(&[PipelineResult]) -> bool,
        mut on_tick: impl FnMut(&[PipelineResult], Duration),
    ) -> Result<Vec<PipelineResult>, BoxError> {
        let as_result = |body: &serde_json::Value| serde_json::from_value::<PipelineResult>(body.clone()).ok();
        let typed = |values: &[serde_json::Value]| values.iter().filter_map(as_result).collect::<Vec<_>>();
        let waited = self
            .wait_for_ticking(
                timeout,
                |body| as_result(body).is_some_and(|result| keep(&result)),
                |values| done(&typed(values)),
                |values, elapsed| on_tick(&typed(values), elapsed),
            )
            .await?;
        let results = typed(&waited.values);
        if !waited.complete {
            return Err(format!("timed out after {timeout:?}; results so far: {results:#?}").into());
        }
        Ok(results)
    }

    pub async fn close(self) {
        let _ = self
            .sns
            .unsubscribe()
            .subscription_arn(&self.subscription_arn)
            .send()
            .await;
        let _ = self.sqs.delete_queue().queue_url(&self.queue_url).send().await;
    }
}

/// Keys under `prefix` in `bucket`.
pub async fn list_keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>, BoxError> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(page?.contents.unwrap_or_default().into_iter().filter_map(|o| o.key));
    }
    Ok(keys)
}

/// A name unique to this run (tests re-run against a long-lived stack must not collide).
pub fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{}-{:x}", std::process::id(), nanos % 0xffff_ffff)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .take(40)
        .collect()
}
