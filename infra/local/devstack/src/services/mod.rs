//! Local stand-ins for what no AWS emulator provides, served over real HTTP on loopback by the
//! `local-services` binary, which `infra/local/stack.sh up` starts next to ministack:
//!
//! | service       | port (base = `LOCAL_STACK_PORT` + 10) | stands in for                         |
//! |---------------|---------------------------------------|---------------------------------------|
//! | `camera_api`  | base + 0                              | the user's camera API (seed 002)      |
//! | `mediaconvert`| base + 1                              | AWS Elemental MediaConvert (REST API, jobs run by ffmpeg) |
//! | `origin`      | base + 2                              | the CloudFront distribution in front of the output bucket |
//! | `gif_sources` | base + 3                              | web servers GIF sources come from     |
//!
//! Each service is a plain function from a request to a response; this module owns the
//! listening, so a service only says what it answers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::BoxError;

pub mod camera_api;
pub mod gif_sources;
pub mod mediaconvert;
pub mod origin;

/// A response body: whole (most answers) or streamed (large objects).
pub type Body = BoxBody<Bytes, BoxError>;
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// The services and their ports, from `LOCAL_STACK_PORT` (default 4566) so that two checkouts
/// can each run their own stack side by side.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub camera_api: u16,
    pub mediaconvert: u16,
    pub origin: u16,
    /// Allow-listed for the GIF converter (`GifSourceLoopbackAllowList` in the Makefile).
    pub gif_sources: u16,
}

impl Ports {
    pub fn from_env() -> Ports {
        let stack_port: u16 = std::env::var("LOCAL_STACK_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(4566);
        let base = stack_port + 10;
        Ports {
            camera_api: base,
            mediaconvert: base + 1,
            origin: base + 2,
            gif_sources: base + 3,
        }
    }
}

pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(value.to_string()))
        .expect("static response parts are valid")
}

/// A JSON error body in the shape every local service uses: `{"message": ...}`.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    json(status, &serde_json::json!({ "message": message.to_string() }))
}

/// Reads a whole request body (the local services only take small JSON bodies).
pub async fn read_body(request: Request<Incoming>) -> Result<Bytes, BoxError> {
    Ok(request.into_body().collect().await?.to_bytes())
}

/// Serves `handler` on `address` until the process ends; one task per connection.
pub async fn serve<H>(name: &'static str, address: SocketAddr, handler: H) -> Result<(), BoxError>
where
    H: Fn(Request<Incoming>) -> ResponseFuture + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("{name}: cannot listen on {address}: {e}"))?;
    tracing::info!(service = name, %address, "listening");
    let handler = Arc::new(handler);
    loop {
        let (stream, _) = listener.accept().await?;
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(service = name, error = %err, "connection ended with an error");
            }
        });
    }
}
