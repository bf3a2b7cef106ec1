use gif_converter::fetch::SafeFetcher;
use gif_converter::{Config, Converter, TaskStore};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::config::EnvReader;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let converter = Converter {
        tasks: TaskStore {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            table: config.table.clone(),
        },
        s3: shared::clients::s3_client(&sdk),
        sqs: shared::clients::sqs_client(&sdk),
        fetcher: SafeFetcher::new(config.policy.clone(), &config.input_bucket, config.fetch)?,
        config,
    };
    let converter = &converter;
    run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| converter.handle(event),
    ))
    .await
}
