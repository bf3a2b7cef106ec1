use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use segmented_rendition::{Config, SegmentTasks};
use shared::config::EnvReader;
use shared::contracts::segmented::SegmentTask;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let tasks = SegmentTasks {
        s3: shared::clients::s3_client(&sdk),
        sns: shared::clients::sns_client(&sdk),
        ledger: shared::ledger::Ledger::from_env(&sdk),
        config,
    };
    let tasks = &tasks;
    run(service_fn(move |event: LambdaEvent<SegmentTask>| tasks.handle(event))).await
}
