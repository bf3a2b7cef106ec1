use gif_api::{Api, Config};
use lambda_http::{run, service_fn, Error, Request};
use shared::config::EnvReader;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = Config::from_env(EnvReader::from_env())?;
    let sdk = shared::clients::load_sdk_config().await;
    let api = Api {
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        sqs: shared::clients::sqs_client(&sdk),
        s3: shared::clients::s3_client(&sdk),
        config,
    };
    let api = &api;
    run(service_fn(move |request: Request| api.handle(request))).await
}
