//! A stand-in for the Lambda Runtime API, just enough to run a function binary as Lambda does
//! (`/next`, `/response`, `/error`, `/init/error`) and time it: when the process first asked for
//! work (cold init), and how long each invocation took. Used by the benchmarks, which need a
//! measurement point the emulator does not expose.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{mpsc, oneshot, watch, Mutex};

type Reply = oneshot::Sender<Result<Bytes, Bytes>>;

struct Shared {
    /// When the function first asked for work; watched, so waiting costs no polling CPU that
    /// the process being timed would otherwise compete with.
    first_next: watch::Sender<Option<Instant>>,
    queue: Mutex<mpsc::Receiver<(String, Bytes, Reply)>>,
    waiting: std::sync::Mutex<HashMap<String, Reply>>,
}

pub struct FakeRuntimeApi {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    sender: mpsc::Sender<(String, Bytes, Reply)>,
    next_id: std::sync::atomic::AtomicU64,
}

impl FakeRuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (sender, receiver) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            first_next: watch::Sender::new(None),
            queue: Mutex::new(receiver),
            waiting: std::sync::Mutex::new(HashMap::new()),
        });
        let server_shared = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = server_shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(shared.clone(), request));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(FakeRuntimeApi {
            address,
            shared,
            sender,
            next_id: 0.into(),
        })
    }

    /// Waits until the function asks for work, at most `timeout`; returns when it did.
    pub async fn wait_for_first_next(&self, timeout: Duration) -> Option<Instant> {
        let mut first_next = self.shared.first_next.subscribe();
        let asked = tokio::time::timeout(timeout, first_next.wait_for(Option::is_some))
            .await
            .ok()?
            .ok()?;
        *asked
    }

    /// Hands `event` to the function and waits for its answer; returns it with the time taken.
    pub async fn invoke(&self, event: &serde_json::Value) -> Result<(Duration, serde_json::Value), String> {
        let id = format!(
            "bench-{}",
            self.next_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let (reply, answer) = oneshot::channel();
        let started = Instant::now();
        self.sender
            .send((id, Bytes::from(serde_json::to_vec(event).unwrap()), reply))
            .await
            .map_err(|_| "runtime API stopped".to_owned())?;
        let outcome = answer.await.map_err(|_| "the function never answered".to_owned())?;
        let elapsed = started.elapsed();
        match outcome {
            Ok(body) => Ok((
                elapsed,
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            )),
            Err(body) => Err(String::from_utf8_lossy(&body).into_owned()),
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if method == Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        shared.first_next.send_if_modified(|first| {
            let unset = first.is_none();
            first.get_or_insert_with(Instant::now);
            unset
        });
        let next = shared.queue.lock().await.recv().await;
        let Some((id, event, reply)) = next else {
            return Ok(status(StatusCode::GONE));
        };
        shared.waiting.lock().unwrap().insert(id.clone(), reply);
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 900_000;
        let response = Response::builder()
            .header("Lambda-Runtime-Aws-Request-Id", &id)
            .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:000000000000:function:bench",
            )
            .header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            .body(Full::new(event))
            .unwrap();
        return Ok(response);
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if method == Method::POST {
        if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
            let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
            if let Some(reply) = shared.waiting.lock().unwrap().remove(id) {
                let _ = reply.send(if kind == "response" { Ok(body) } else { Err(body) });
            }
            return Ok(status(StatusCode::ACCEPTED));
        }
        if path == "/2018-06-01/runtime/init/error" {
            eprintln!("function init error: {}", String::from_utf8_lossy(&body));
            return Ok(status(StatusCode::ACCEPTED));
        }
    }
    Ok(status(StatusCode::NOT_FOUND))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    Response::builder().status(code).body(Full::new(Bytes::new())).unwrap()
}
