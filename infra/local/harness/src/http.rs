//! The harness's one HTTP client: `reqwest` (already the workspace's client for plain HTTP, with
//! rustls for the odd TLS call), shared by every request a test or the demo makes itself: the
//! origin server's pages and ranges, GIF links, the GIF API's Function URL and the emulator's
//! CloudWatch endpoints. Requests to AWS-style endpoints are SigV4-signed with the SDK's own
//! signer (`aws-sigv4`) and the environment's credentials (the local stack's dummy ones).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::BoxError;

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON, or the text as a JSON string when it is not JSON (an error page).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&self.body).into()))
    }
}

/// A client for one request. Not one for the process: each `#[tokio::test]` has a runtime of
/// its own, and a pooled connection dies with the runtime that opened it ("runtime dropped the
/// dispatch task" in the next test that reuses it). On loopback a new connection costs nothing.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client (no TLS roots needed on loopback)")
}

/// `method url` with `headers`, read to the end.
pub async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<Response, BoxError> {
    let mut builder = client().request(reqwest::Method::from_bytes(method.as_bytes())?, url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    read(builder.send().await?).await
}

/// `GET url`.
pub async fn get(url: &str) -> Result<Response, BoxError> {
    request("GET", url, &[]).await
}

/// A POST of `body` to `url` with `headers`, SigV4-signed for `service` (e.g. `lambda`,
/// `monitoring`, `logs`) when given.
pub async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    signed_for: Option<&str>,
) -> Result<Response, BoxError> {
    let mut request = http::Request::builder().method("POST").uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(body)?;
    if let Some(service) = signed_for {
        sign_with_env_credentials(&mut request, service)?;
    }
    let request = reqwest::Request::try_from(request)?;
    read(client().execute(request).await?).await
}

async fn read(response: reqwest::Response) -> Result<Response, BoxError> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = response.bytes().await?.to_vec();
    Ok(Response { status, headers, body })
}

/// Signs `request` for `service` in place (SigV4, the environment's credentials and region).
fn sign_with_env_credentials(request: &mut http::Request<Vec<u8>>, service: &str) -> Result<(), BoxError> {
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "harness").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let url = request.uri().to_string();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
        .collect::<Result<_, http::header::ToStrError>>()?;
    let signable = SignableRequest::new(
        request.method().as_str(),
        &url,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
