//! AWS SDK configuration and clients, built once at cold start and reused by every invocation.
//!
//! Endpoints come from the SDK's standard variables (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`), so the same binary talks to AWS or to the local stack. When
//! S3's endpoint is overridden, S3 uses path-style addressing: `bucket.localhost` does not
//! resolve, `localhost/bucket` does.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared SDK configuration (region, credentials, endpoints). Expensive: call once.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Whether the SDK will send `service`'s requests to an overridden endpoint.
pub fn endpoint_overridden(service_env_suffix: &str) -> bool {
    let ignored = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    let set = |name: &str| std::env::var(name).map(|v| !v.trim().is_empty()).unwrap_or(false);
    !ignored && (set(&format!("AWS_ENDPOINT_URL_{service_env_suffix}")) || set("AWS_ENDPOINT_URL"))
}

pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if endpoint_overridden("S3") {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

pub fn sns_client(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}

pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}
