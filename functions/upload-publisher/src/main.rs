use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::config::EnvReader;
use upload_publisher::{Config, Publisher};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let publisher = Publisher {
        sns: shared::clients::sns_client(&sdk),
        ledger: shared::ledger::Ledger::from_env(&sdk),
        config,
    };
    let publisher = &publisher;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        publisher.handle(event)
    }))
    .await
}
