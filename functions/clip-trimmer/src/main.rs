// The runtime future nests the SDK, reqwest and lambda_runtime futures deeper than rustc's
// default layout-query limit.
#![recursion_limit = "256"]

use clip_trimmer::{Config, Trimmer};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::config::EnvReader;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let trimmer = Trimmer::new(&sdk, config)?;
    let trimmer = &trimmer;
    run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| trimmer.handle(event),
    ))
    .await
}
