// The runtime's future nests the tasks' futures (plan, encode, join, answers) deeper than the
// compiler's default query depth when it computes their layout.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use segmented_rendition::{Config, SegmentTasks};
use shared::config::EnvReader;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let tasks = SegmentTasks {
        s3: shared::clients::s3_client(&sdk),
        sns: shared::clients::sns_client(&sdk),
        sfn: aws_sdk_sfn::Client::new(&sdk),
        ledger: shared::ledger::Ledger::from_env(&sdk),
        config,
    };
    let tasks = &tasks;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        tasks.handle(event)
    }))
    .await
}
