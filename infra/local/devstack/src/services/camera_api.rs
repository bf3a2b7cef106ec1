//! Stand-in for the user's camera API (seed 002). Filled in by the clip-trimmer work.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::{json, ResponseFuture};

pub fn handle(_request: Request<Incoming>) -> ResponseFuture {
    Box::pin(async move { json(StatusCode::NOT_FOUND, &serde_json::json!({"message": "not yet"})) })
}
