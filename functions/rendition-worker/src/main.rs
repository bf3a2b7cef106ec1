use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use rendition_worker::{Config, Worker};
use shared::config::EnvReader;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let worker = Worker {
        s3: shared::clients::s3_client(&sdk),
        sns: shared::clients::sns_client(&sdk),
        sqs: shared::clients::sqs_client(&sdk),
        sfn: aws_sdk_sfn::Client::new(&sdk),
        ledger: shared::ledger::Ledger::from_env(&sdk),
        config,
    };
    let worker = &worker;
    run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| worker.handle(event),
    ))
    .await
}
