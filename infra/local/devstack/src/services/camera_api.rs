//! Stand-in for the user's camera API (seed 002), derived from the recordings bucket, so that
//! what it answers is exactly what is in S3:
//!
//! - a camera is a folder `recordings/<alias>/` holding a marker object `.camera-<cameraId>`;
//! - a recording is `recordings/<alias>/<alias>_<start>.mp4`, its start in the name
//!   (`TIMESTAMP_FORMAT`, default `%Y%m%dT%H%M%S`, UTC) and its length in the object's
//!   `duration-ms` metadata (what a recorder knows when it uploads).
//!
//! | request                                   | answer                                            |
//! |-------------------------------------------|---------------------------------------------------|
//! | `GET /cameras/{cameraId}`                 | `{"cameraId", "alias"}`, or 404                   |
//! | `GET /cameras/recording/?alias&startDate&endDate` | seed 002's list of recordings overlapping the range |
//! | `POST /cameras/clips`                     | 201; the clip is kept in memory                   |
//! | `GET /cameras/clips`                      | every clip posted so far (for tests and the demo) |
//!
//! A camera id starting with `unavailable-` gets 503 from every endpoint: the tests use it to
//! show the trimmer's retries and dead-letter queue.

use std::sync::{Mutex, OnceLock};

use clip_trimmer::camera_api::{iso, parse_iso};
use clip_trimmer::recordings::{NameFormat, Origin};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::{error, json, read_body, Ports, ResponseFuture};
use crate::{Clients, StackOutputs};

/// The folder of the recordings bucket the stand-in serves (the template's `RecordingsDir`).
pub const RECORDINGS_DIR: &str = "recordings";

/// Where the stand-in says recordings are: `RECORDINGS_URL` of the local deployment.
pub fn recordings_url(ports: Ports) -> String {
    format!("{}/recordings", super::url(ports.camera_api))
}

/// The marker object that makes `alias` the camera `camera_id`.
pub fn camera_marker_key(alias: &str, camera_id: &str) -> String {
    format!("{RECORDINGS_DIR}/{alias}/.camera-{camera_id}")
}

pub fn name_format() -> NameFormat {
    NameFormat {
        timestamp_format: std::env::var("TIMESTAMP_FORMAT").unwrap_or_else(|_| "%Y%m%dT%H%M%S".to_owned()),
        old_file_format: false,
    }
}

static POSTED_CLIPS: Mutex<Vec<serde_json::Value>> = Mutex::new(Vec::new());

pub fn handle(request: Request<Incoming>) -> ResponseFuture {
    Box::pin(async move {
        match route(request).await {
            Ok(response) => response,
            Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
        }
    })
}

async fn route(request: Request<Incoming>) -> Result<hyper::Response<super::Body>, crate::BoxError> {
    let path = request.uri().path().to_owned();
    let query = query_pairs(request.uri().query().unwrap_or(""));
    let method = request.method().clone();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    Ok(match (method, segments.as_slice()) {
        (Method::POST, ["cameras", "clips"]) => {
            let body: serde_json::Value = serde_json::from_slice(&read_body(request).await?)?;
            if camera_unavailable(body.get("cameraId").and_then(|c| c.as_str()).unwrap_or("")) {
                return Ok(error(StatusCode::SERVICE_UNAVAILABLE, "camera service unavailable"));
            }
            POSTED_CLIPS.lock().unwrap().push(body);
            json(StatusCode::CREATED, &json!({"stored": true}))
        }
        (Method::GET, ["cameras", "clips"]) => json(StatusCode::OK, &json!(*POSTED_CLIPS.lock().unwrap())),
        (Method::GET, ["cameras", "recording"]) => {
            let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            let (Some(alias), Some(start), Some(end)) = (get("alias"), get("startDate"), get("endDate")) else {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "alias, startDate and endDate are required",
                ));
            };
            let (Some(start), Some(end)) = (parse_iso(start), parse_iso(end)) else {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "startDate and endDate must be RFC 3339 dates",
                ));
            };
            json(StatusCode::OK, &json!(recordings(alias, start, end).await?))
        }
        (Method::GET, ["cameras", camera_id]) => {
            let camera_id = percent_encoding::percent_decode_str(camera_id).decode_utf8_lossy();
            if camera_unavailable(&camera_id) {
                return Ok(error(StatusCode::SERVICE_UNAVAILABLE, "camera service unavailable"));
            }
            match alias_of(&camera_id).await? {
                Some(alias) => json(StatusCode::OK, &json!({"cameraId": camera_id, "alias": alias})),
                None => error(StatusCode::NOT_FOUND, format!("no camera {camera_id}")),
            }
        }
        (Method::GET, [""]) => json(StatusCode::OK, &json!({"service": "camera API stand-in"})),
        _ => error(StatusCode::NOT_FOUND, format!("no route {path}")),
    })
}

fn camera_unavailable(camera_id: &str) -> bool {
    camera_id.starts_with("unavailable-")
}

struct Context {
    clients: Clients,
    bucket: String,
    origin: Origin,
}

async fn context() -> Result<&'static Context, crate::BoxError> {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    if let Some(context) = CONTEXT.get() {
        return Ok(context);
    }
    // Read when first needed: the stack is deployed after the services start.
    let bucket = StackOutputs::load()?.get("RecordingsBucketName").to_owned();
    let clients = Clients::from_env().await;
    let origin = Origin {
        recordings_url: recordings_url(Ports::from_env()),
        bucket: bucket.clone(),
        dir: RECORDINGS_DIR.to_owned(),
    };
    Ok(CONTEXT.get_or_init(|| Context {
        clients,
        bucket,
        origin,
    }))
}

async fn keys(prefix: &str) -> Result<Vec<String>, crate::BoxError> {
    let context = context().await?;
    crate::list_keys(&context.clients.s3, &context.bucket, prefix).await
}

async fn alias_of(camera_id: &str) -> Result<Option<String>, crate::BoxError> {
    let marker = format!("/.camera-{camera_id}");
    Ok(keys(&format!("{RECORDINGS_DIR}/"))
        .await?
        .into_iter()
        .find(|key| key.ends_with(&marker))
        .and_then(|key| key.split('/').nth(1).map(str::to_owned)))
}

async fn recordings(alias: &str, start_ms: i64, end_ms: i64) -> Result<Vec<serde_json::Value>, crate::BoxError> {
    let context = context().await?;
    let names = name_format();
    let mut listed = Vec::new();
    for key in keys(&format!("{RECORDINGS_DIR}/{alias}/")).await? {
        let Some(recording_start) = key.ends_with(".mp4").then(|| names.start_from_name(&key)).flatten() else {
            continue;
        };
        let head = context
            .clients
            .s3
            .head_object()
            .bucket(&context.bucket)
            .key(&key)
            .send()
            .await?;
        let Some(duration_ms) = head
            .metadata()
            .and_then(|m| m.get("duration-ms"))
            .and_then(|d| d.parse::<i64>().ok())
        else {
            continue; // still being written by the recorder, as it were
        };
        let recording_end = recording_start + duration_ms;
        if recording_end <= start_ms || recording_start >= end_ms {
            continue;
        }
        listed.push(json!({
            "startDate": iso(recording_start),
            "endDate": iso(recording_end),
            "recordingUrl": context.origin.url_of(&key),
            "thumbLargeUrl": null,
            "thumbSmallUrl": null,
            "alias": alias,
        }));
    }
    listed.sort_by_key(|r| r["startDate"].as_str().unwrap_or("").to_owned());
    Ok(listed)
}

/// `a=1&b=x%20y` → pairs, decoded (`+` is a space, as in forms).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}
