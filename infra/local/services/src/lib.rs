//! Local stand-ins for what no AWS emulator provides, served over real HTTP on loopback by the
//! `local-services` binary, which `infra/local/stack.sh` starts next to ministack once the stack
//! is deployed. Ports are `LOCAL_STACK_PORT` plus the offsets in `infra/local/stack.env`:
//!
//! | service       | stands in for                                                    |
//! |---------------|------------------------------------------------------------------|
//! | `camera_api`  | the user's camera API (seed 002)                                 |
//! | `mediaconvert`| AWS Elemental MediaConvert (REST API, jobs run by ffmpeg)        |
//! | `origin`      | the CloudFront distribution in front of the output bucket        |
//! | `gif_sources` | web servers GIF sources come from                                |
//!
//! They depend on no function crate and read none of the harness's files: what they need of the
//! deployed stack comes from their environment (`RECORDINGS_BUCKET`, `OUTPUT_BUCKET`,
//! `RESULTS_TOPIC_ARN`, `MEDIACONVERT_EVENT_SOURCE`), set by `stack.sh` from the stack's outputs.
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

pub use stack_clients::BoxError;

pub mod camera_api;
pub mod gif_sources;
pub mod mediaconvert;
pub mod origin;

/// A response body: whole (most answers) or streamed (large objects).
pub type Body = BoxBody<Bytes, BoxError>;
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// The services and their ports: `LOCAL_STACK_PORT` (else `STACK_PORT` of `stack.env`) plus each
/// service's offset from `stack.env`, so that two checkouts can each run their own stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub camera_api: u16,
    pub mediaconvert: u16,
    pub origin: u16,
    /// Allow-listed for the GIF converter (`GifSourceLoopbackAllowList` in the Makefile).
    pub gif_sources: u16,
}

/// `infra/local/stack.env`, the one place the port map is written.
const STACK_ENV: &str = include_str!("../../stack.env");

/// A setting of `stack.env` (`NAME=value` lines, `#` comments).
pub fn stack_setting(name: &str) -> Option<&'static str> {
    STACK_ENV
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim())
}

fn port_setting(name: &str) -> u16 {
    stack_setting(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("infra/local/stack.env has no numeric {name}"))
}

/// The stack's own port (ministack's gateway): `LOCAL_STACK_PORT`, else `STACK_PORT`.
pub fn stack_port() -> u16 {
    std::env::var("LOCAL_STACK_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| port_setting("STACK_PORT"))
}

/// The stack's endpoint: `AWS_ENDPOINT_URL` (set by `stack.sh run`), else loopback at
/// [`stack_port`].
pub fn stack_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| url(stack_port()))
}

impl Ports {
    pub fn from_env() -> Ports {
        Ports::for_stack(stack_port())
    }

    pub fn for_stack(stack_port: u16) -> Ports {
        Ports {
            camera_api: stack_port + port_setting("CAMERA_API_PORT_OFFSET"),
            mediaconvert: stack_port + port_setting("MEDIACONVERT_PORT_OFFSET"),
            origin: stack_port + port_setting("ORIGIN_PORT_OFFSET"),
            gif_sources: stack_port + port_setting("GIF_SOURCES_PORT_OFFSET"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_stack_env() {
        let ports = Ports::for_stack(4566);
        assert_eq!(ports.camera_api, 4566 + port_setting("CAMERA_API_PORT_OFFSET"));
        let all = [ports.camera_api, ports.mediaconvert, ports.origin, ports.gif_sources];
        let mut distinct = all.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), all.len(), "two services on one port: {ports:?}");
        assert!(stack_setting("TEST_STACK_PORT").is_some());
    }
}
