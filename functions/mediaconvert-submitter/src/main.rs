// The handler's future (SDK request builders for the whole job settings tree) is deeper than
// rustc's default layout query limit.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mediaconvert_submitter::{Config, Submitter};
use shared::config::EnvReader;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let submitter = Submitter::new(
        config,
        shared::clients::sns_client(&sdk),
        aws_sdk_mediaconvert::Client::new(&sdk),
    )
    .with_ledger(shared::ledger::Ledger::from_env(&sdk));
    let submitter = &submitter;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        submitter.handle(event)
    }))
    .await
}
