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
//!
//! The wire format (dates as RFC 3339 UTC with milliseconds, `recordingUrl` under
//! `RECORDINGS_URL`, the recording names) is written here from seed 002's description, not taken
//! from the clip trimmer: if the trimmer's reading of the API drifts, the end-to-end clip tests
//! fail instead of the stand-in drifting with it. Configuration: `RECORDINGS_BUCKET` (the stack's
//! recordings bucket; until it is set the listing endpoints answer 503) and `TIMESTAMP_FORMAT`.

use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::{error, json, read_body, Ports, ResponseFuture};
use stack_clients::Clients;

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

/// How recorders name their files: `<alias>_<start>.mp4`, the start in UTC written with
/// `TIMESTAMP_FORMAT` (a strftime pattern; the seed's default `%Y%m%dT%H%M%S`).
#[derive(Debug, Clone)]
pub struct NameFormat {
    pub timestamp_format: String,
}

impl NameFormat {
    /// The file name of a recording of `alias` starting at `start_ms` (epoch ms).
    pub fn name_for(&self, alias: &str, start_ms: i64) -> String {
        let start = DateTime::<Utc>::from_timestamp_millis(start_ms).unwrap_or_default();
        format!("{alias}_{}.mp4", start.format(&self.timestamp_format))
    }

    /// The start (epoch ms) written in a recording's file name, if it is one of ours.
    pub fn start_from_name(&self, key: &str) -> Option<i64> {
        let name = key.rsplit('/').next()?;
        let stamp = name.strip_suffix(".mp4")?.rsplit('_').next()?;
        let start = NaiveDateTime::parse_from_str(stamp, &self.timestamp_format).ok()?;
        Some(start.and_utc().timestamp_millis())
    }
}

pub fn name_format() -> NameFormat {
    NameFormat {
        timestamp_format: std::env::var("TIMESTAMP_FORMAT").unwrap_or_else(|_| "%Y%m%dT%H%M%S".to_owned()),
    }
}

/// A date as the camera API writes it: RFC 3339, UTC, milliseconds (`2018-09-16T16:00:17.000Z`).
pub fn api_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A date in a query (`startDate`, `endDate`): any RFC 3339 date, as epoch ms.
pub fn parse_api_date(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|d| d.timestamp_millis())
}

/// The `recordingUrl` of a recording: `RECORDINGS_URL` + its key below `RECORDINGS_DIR`, each
/// path segment percent-encoded.
pub fn recording_url(recordings_url: &str, key: &str) -> Option<String> {
    let rest = key.strip_prefix(RECORDINGS_DIR)?.strip_prefix('/')?;
    Some(format!(
        "{}/{}",
        recordings_url.trim_end_matches('/'),
        shared::storage::key_url_path(rest)
    ))
}

/// One entry of the recording list, in the API's field names.
pub fn listed_recording(alias: &str, start_ms: i64, end_ms: i64, recording_url: &str) -> serde_json::Value {
    json!({
        "startDate": api_date(start_ms),
        "endDate": api_date(end_ms),
        "recordingUrl": recording_url,
        "thumbLargeUrl": null,
        "thumbSmallUrl": null,
        "alias": alias,
    })
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
            let (Some(start), Some(end)) = (parse_api_date(start), parse_api_date(end)) else {
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
    recordings_url: String,
}

async fn context() -> Result<&'static Context, crate::BoxError> {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    if let Some(context) = CONTEXT.get() {
        return Ok(context);
    }
    let bucket = std::env::var("RECORDINGS_BUCKET")
        .map_err(|_| "RECORDINGS_BUCKET is not set (the stack is not deployed yet: make stack)")?;
    let clients = Clients::from_env().await;
    Ok(CONTEXT.get_or_init(|| Context {
        clients,
        bucket,
        recordings_url: recordings_url(Ports::from_env()),
    }))
}

async fn keys(prefix: &str) -> Result<Vec<String>, crate::BoxError> {
    let context = context().await?;
    stack_clients::list_keys(&context.clients.s3, &context.bucket, prefix).await
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
        let Some(url) = recording_url(&context.recordings_url, &key) else {
            continue;
        };
        listed.push(listed_recording(alias, recording_start, recording_end, &url));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer's shape is seed 002's, kept as a fixture that the clip trimmer's camera API
    /// client is tested against too: the two sides meet only in this file.
    #[test]
    fn a_listed_recording_is_written_in_the_api_wire_format() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../../shared/fixtures/camera-api-recordings.json")).unwrap();
        let url = recording_url(
            "https://cameras.example.com/recordings",
            "recordings/test/test_20180916T160017.mp4",
        )
        .unwrap();
        let listed = listed_recording("test", 1_537_113_617_000, 1_537_113_617_000 + 600_000, &url);
        assert_eq!(json!([listed]), fixture);
    }

    #[test]
    fn recording_urls_encode_each_path_segment() {
        let url = recording_url("http://127.0.0.1:4576/recordings", "recordings/cam one/cam one_1.mp4").unwrap();
        assert_eq!(url, "http://127.0.0.1:4576/recordings/cam%20one/cam%20one_1.mp4");
        assert_eq!(recording_url("http://x/recordings", "elsewhere/a.mp4"), None);
    }

    #[test]
    fn recording_names_carry_their_start_in_utc() {
        let names = NameFormat {
            timestamp_format: "%Y%m%dT%H%M%S".into(),
        };
        let name = names.name_for("cam", 1_537_113_617_000);
        assert_eq!(name, "cam_20180916T160017.mp4");
        assert_eq!(
            names.start_from_name(&format!("recordings/cam/{name}")),
            Some(1_537_113_617_000)
        );
        assert_eq!(names.start_from_name("recordings/cam/.camera-1"), None);
        assert_eq!(parse_api_date("2018-09-16T18:00:17+02:00"), Some(1_537_113_617_000));
    }
}
