//! Fetching a stranger's URL without becoming their proxy into our network.
//!
//! [`SafeFetcher::fetch_to_file`] downloads an `http`/`https` source to a local file:
//!
//! * **One resolution, the vetted address used.** Every connection goes through
//!   [`VettingConnector`]: it resolves the host once, checks *every* address it got against the
//!   [`AddressPolicy`] (a name that resolves to any forbidden address is refused outright, the
//!   classic trick being one public and one private answer), and connects to an address it has
//!   just checked. Nothing resolves the name a second time, so a DNS answer that changes between
//!   the check and the connect (DNS rebinding) changes nothing. TLS still verifies the
//!   certificate against the host *name* (rustls, via `hyper-rustls`).
//! * **Every redirect hop re-checked.** Redirects are followed by hand (at most
//!   `max_redirects`): each `Location` is parsed and checked like the original URL (scheme,
//!   literal address), and its connection is vetted by the same connector.
//! * **Limits.** A connect timeout per address, a read timeout per chunk (a server that stalls
//!   is cut off), the invocation deadline over everything, and a maximum size enforced on the
//!   declared `Content-Length` *and* on the bytes actually received (chunked bodies lie by
//!   omission).
//! * **No ambient configuration.** No proxy variables are read, no cookies kept, no
//!   connection pooling (each request resolves and vets afresh).
//!
//! Crates: hyper 1 with `hyper-util`'s client and `hyper-rustls`, the stack the AWS SDK itself
//! uses (so this adds almost nothing to the build). reqwest was the other candidate: its custom
//! resolver hook sees the host name but not the port, so an allow-list of exact loopback
//! sockets could not be enforced there, and it skips the resolver altogether for literal
//! addresses. With hyper the connector sees the full URI and owns the connect.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shared::ffmpeg::Deadline;
use shared::source_url::{url_without_query as shown, AddressPolicy, SourceUrl};
use shared::storage::local_io;
use shared::{Code, ProcessingError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The limits of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub max_bytes: u64,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_redirects: u32,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_bytes: 200 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(15),
            max_redirects: 5,
        }
    }
}

/// What a fetch wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: u64,
    /// The URL the body finally came from (after redirects), query string dropped.
    pub final_url: String,
    pub redirects: u32,
}

/// The HTTP(S) client for sources: built once at cold start.
#[derive(Clone)]
pub struct SafeFetcher {
    client: Client<HttpsConnector<VettingConnector>, Empty<Bytes>>,
    policy: Arc<AddressPolicy>,
    input_bucket: String,
    limits: FetchLimits,
}

impl SafeFetcher {
    pub fn new(policy: AddressPolicy, input_bucket: &str, limits: FetchLimits) -> Result<Self, std::io::Error> {
        let policy = Arc::new(policy);
        let connector = VettingConnector {
            policy: policy.clone(),
            connect_timeout: limits.connect_timeout,
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https);
        Ok(SafeFetcher {
            client,
            policy,
            input_bucket: input_bucket.to_owned(),
            limits,
        })
    }

    /// Downloads `url` into `dest`, following redirects that pass the checks. `on_bytes` is
    /// called with (received, declared total) as the body arrives.
    pub async fn fetch_to_file(
        &self,
        url: &url::Url,
        dest: &Path,
        deadline: Deadline,
        on_bytes: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<Fetched, ProcessingError> {
        match tokio::time::timeout_at(deadline.instant(), self.fetch_inner(url, dest, on_bytes)).await {
            Ok(result) => result,
            Err(_) => Err(ProcessingError::retryable(
                Code::SourceTimeout,
                "the source did not arrive before the invocation's deadline",
            )),
        }
    }

    async fn fetch_inner(
        &self,
        start: &url::Url,
        dest: &Path,
        on_bytes: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<Fetched, ProcessingError> {
        let mut url = start.clone();
        let mut came_from: Option<url::Url> = None;
        let mut redirects = 0;
        loop {
            let uri: Uri = url.as_str().parse().map_err(|e| {
                ProcessingError::rejected(Code::SourceUrlInvalid, format!("{url} is not a valid request URI: {e}"))
            })?;
            let request = hyper::Request::get(uri)
                .header(
                    hyper::header::USER_AGENT,
                    concat!("video-lambda-suite-gif/", env!("CARGO_PKG_VERSION")),
                )
                .header(
                    hyper::header::ACCEPT,
                    "video/*, application/octet-stream;q=0.9, */*;q=0.5",
                )
                .body(Empty::<Bytes>::new())
                .map_err(|e| ProcessingError::rejected(Code::SourceUrlInvalid, e.to_string()))?;
            // The connect timeout is per address inside the connector; this bounds the wait for
            // the response head as a whole.
            let head_timeout = self.limits.connect_timeout + self.limits.read_timeout;
            let response = match tokio::time::timeout(head_timeout, self.client.request(request)).await {
                Err(_) => {
                    return Err(ProcessingError::retryable(
                        Code::SourceTimeout,
                        format!("no response from {} within {head_timeout:?}", shown(&url)),
                    ))
                }
                Ok(Err(err)) => {
                    let err = classify_client_error(&url, &err);
                    return Err(match &came_from {
                        Some(previous) => after_redirect(redirects, previous, err),
                        None => err,
                    });
                }
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                redirects += 1;
                if redirects > self.limits.max_redirects {
                    return Err(ProcessingError::rejected(
                        Code::TooManyRedirects,
                        format!(
                            "more than {} redirects from {}",
                            self.limits.max_redirects,
                            shown(start)
                        ),
                    ));
                }
                let location = response
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        ProcessingError::rejected(
                            Code::SourceHttpStatus,
                            format!("{} answered {status} without a usable Location", shown(&url)),
                        )
                    })?;
                let next = url.join(location).map_err(|e| {
                    ProcessingError::rejected(Code::SourceUrlInvalid, format!("redirect to {location:?}: {e}"))
                })?;
                // The hop is checked like a submitted URL: scheme, literal addresses, credentials.
                came_from = Some(url.clone());
                url = match SourceUrl::parse(next.as_str(), &self.policy, &self.input_bucket) {
                    Ok(SourceUrl::Http(next)) => next,
                    Ok(SourceUrl::S3 { .. }) => {
                        return Err(ProcessingError::rejected(
                            Code::SourceSchemeRefused,
                            "a redirect to an s3:// location is not followed",
                        ))
                    }
                    Err(err) => return Err(after_redirect(redirects, &url, err)),
                };
                tracing::info!(hop = redirects, to = %shown(&url), "following a redirect");
                continue;
            }
            if !status.is_success() {
                let reason = format!("{} answered {status}", shown(&url));
                return Err(
                    if status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::REQUEST_TIMEOUT
                    {
                        ProcessingError::retryable(Code::SourceHttpStatus, reason)
                    } else {
                        ProcessingError::rejected(Code::SourceHttpStatus, reason)
                    },
                );
            }
            let declared = response
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(declared) = declared {
                if declared > self.limits.max_bytes {
                    return Err(too_large(
                        &url,
                        &format!("declares {declared} bytes"),
                        self.limits.max_bytes,
                    ));
                }
            }
            let bytes = self
                .stream_body(&url, response.into_body(), dest, declared, on_bytes)
                .await?;
            if bytes == 0 {
                return Err(ProcessingError::rejected(
                    Code::EmptySource,
                    format!("{} sent an empty body", shown(&url)),
                ));
            }
            return Ok(Fetched {
                bytes,
                final_url: shown(&url),
                redirects,
            });
        }
    }

    async fn stream_body(
        &self,
        url: &url::Url,
        mut body: hyper::body::Incoming,
        dest: &Path,
        declared: Option<u64>,
        on_bytes: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<u64, ProcessingError> {
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(local_io("creating", dest))?;
        let mut received = 0u64;
        loop {
            let frame = match tokio::time::timeout(self.limits.read_timeout, body.frame()).await {
                Err(_) => {
                    return Err(ProcessingError::retryable(
                        Code::SourceTimeout,
                        format!(
                            "{} sent nothing for {:?} after {received} bytes",
                            shown(url),
                            self.limits.read_timeout
                        ),
                    ))
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(ProcessingError::retryable(
                        Code::SourceFetchFailed,
                        format!("reading {} failed after {received} bytes: {e}", shown(url)),
                    ))
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            received += data.len() as u64;
            if received > self.limits.max_bytes {
                drop(file);
                let _ = tokio::fs::remove_file(dest).await;
                let max = self.limits.max_bytes;
                return Err(too_large(url, &format!("sent more than {max} bytes"), max));
            }
            file.write_all(&data).await.map_err(local_io("writing", dest))?;
            on_bytes(received, declared);
        }
        file.flush().await.map_err(local_io("writing", dest))?;
        Ok(received)
    }
}

fn too_large(url: &url::Url, what_it_did: &str, max: u64) -> ProcessingError {
    ProcessingError::rejected(
        Code::SourceTooLarge,
        format!("{} {what_it_did}; sources may be at most {max} bytes", shown(url)),
    )
}

/// Names the hop in a refusal after a redirect, so the reason says where it came from.
fn after_redirect(hop: u32, from: &url::Url, mut err: ProcessingError) -> ProcessingError {
    err.reason = format!("redirect {hop} from {}: {}", shown(from), err.reason);
    err
}

/// A refusal from the connector travels through hyper as a boxed error; find it again.
fn classify_client_error(url: &url::Url, err: &hyper_util::client::legacy::Error) -> ProcessingError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(refusal) = current.downcast_ref::<ProcessingError>() {
            return ProcessingError::new(refusal.kind, refusal.code(), refusal.reason.clone());
        }
        source = current.source();
    }
    ProcessingError::retryable(
        if err.is_connect() {
            Code::SourceUnreachable
        } else {
            Code::SourceFetchFailed
        },
        format!("fetching {}: {}", shown(url), shared::error::DisplayErrorChain(err)),
    )
}

/// The connector under TLS: resolve once, vet every address, connect to a vetted one.
#[derive(Clone)]
pub struct VettingConnector {
    policy: Arc<AddressPolicy>,
    connect_timeout: Duration,
}

impl VettingConnector {
    async fn connect(self, uri: Uri) -> Result<TokioIo<TcpStream>, ProcessingError> {
        let host = uri
            .host()
            .ok_or_else(|| ProcessingError::rejected(Code::SourceUrlInvalid, format!("{uri} has no host")))?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = match bare_host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                let lookup = tokio::time::timeout(self.connect_timeout, tokio::net::lookup_host((bare_host, port)));
                match lookup.await {
                    Err(_) => {
                        return Err(ProcessingError::retryable(
                            Code::SourceUnreachable,
                            format!("resolving {host} timed out"),
                        ))
                    }
                    Ok(Err(e)) => {
                        return Err(ProcessingError::rejected(
                            Code::SourceHostUnknown,
                            format!("cannot resolve {host}: {e}"),
                        ))
                    }
                    Ok(Ok(found)) => found.collect(),
                }
            }
        };
        if addresses.is_empty() {
            return Err(ProcessingError::rejected(
                Code::SourceHostUnknown,
                format!("{host} resolves to no address"),
            ));
        }
        for address in &addresses {
            self.policy.check(*address, host)?;
        }
        let mut last_error = None;
        for address in addresses {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    tracing::debug!(%host, %address, "connected to a vetted address");
                    return Ok(TokioIo::new(stream));
                }
                Ok(Err(e)) => last_error = Some(format!("{address}: {e}")),
                Err(_) => last_error = Some(format!("{address}: no connection within {:?}", self.connect_timeout)),
            }
        }
        Err(ProcessingError::retryable(
            Code::SourceUnreachable,
            format!("cannot connect to {host}: {}", last_error.unwrap_or_default()),
        ))
    }
}

impl tower_service::Service<Uri> for VettingConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ProcessingError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

#[cfg(test)]
mod tests;
