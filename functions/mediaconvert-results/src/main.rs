use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mediaconvert_results::{Answerer, Config};
use shared::config::EnvReader;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let answerer = Answerer {
        sns: shared::clients::sns_client(&sdk),
        ledger: shared::ledger::Ledger::from_env(&sdk),
        config,
    };
    let answerer = &answerer;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        answerer.handle(event)
    }))
    .await
}
