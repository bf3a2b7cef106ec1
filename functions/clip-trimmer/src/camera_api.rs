//! The user's camera API (seed 002): a camera's alias, the recordings in a range, and the
//! notice of a finished clip.
//!
//! HTTP with `reqwest` (rustls, no default features): a mature client with connection reuse,
//! timeouts and JSON built in, where hand-rolled hyper code would re-implement all three.
//!
//! Faults are classified for the queue: unreachable, timed out, 5xx or 429 → retryable (the
//! message comes back with a growing delay and, past the redrive limit, goes to the DLQ);
//! 404 for the camera → the request names a camera that does not exist; any other answer the
//! API should never give → failed, with what it said.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use shared::{Code, ProcessingError};

#[derive(Debug, Clone)]
pub struct CameraApi {
    http: reqwest::Client,
    base_url: String,
}

/// A recording as listed by `/cameras/recording/` (seed 002's response shape).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListedRecording {
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub end_date: Option<String>,
    pub recording_url: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub thumb_large_url: Option<String>,
    #[serde(default)]
    pub thumb_small_url: Option<String>,
}

/// What `/cameras/clips` is told about a finished clip.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClipNotice<'a> {
    pub clip_id: &'a str,
    pub camera_id: &'a str,
    pub alias: &'a str,
    pub start_timestamp_in_ms: i64,
    pub end_timestamp_in_ms: i64,
    pub clip_url: &'a str,
    pub thumbnail_url: &'a str,
    pub thumbnail_sizes: &'a [u32],
}

impl CameraApi {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(CameraApi {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// `GET /cameras/{cameraId}` → the camera's alias.
    pub async fn alias(&self, camera_id: &str) -> Result<String, ProcessingError> {
        #[derive(Deserialize)]
        struct Camera {
            alias: String,
        }
        let url = format!("{}/cameras/{}", self.base_url, path_segment(camera_id));
        let response = self.send(self.http.get(&url), "GET /cameras/{cameraId}").await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(ProcessingError::rejected(
                Code::CameraNotFound,
                format!("the camera API knows no camera {camera_id:?}"),
            ));
        }
        let camera: Camera = json_answer(response, "GET /cameras/{cameraId}").await?;
        if camera.alias.is_empty() {
            return Err(ProcessingError::failed(
                Code::CameraApiRejected,
                format!("camera {camera_id:?} has an empty alias"),
            ));
        }
        Ok(camera.alias)
    }

    /// `GET /cameras/recording/?alias=…&startDate=…&endDate=…` → the recordings in the range.
    pub async fn recordings(
        &self,
        alias: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<ListedRecording>, ProcessingError> {
        let url = format!("{}/cameras/recording/", self.base_url);
        let request = self.http.get(&url).query(&[
            ("alias", alias),
            ("startDate", &iso(start_ms)),
            ("endDate", &iso(end_ms)),
        ]);
        let response = self.send(request, "GET /cameras/recording/").await?;
        json_answer(response, "GET /cameras/recording/").await
    }

    /// `POST /cameras/clips`: tells the camera service about the new clip.
    pub async fn post_clip(&self, notice: &ClipNotice<'_>) -> Result<(), ProcessingError> {
        let url = format!("{}/cameras/clips", self.base_url);
        let response = self
            .send(self.http.post(&url).json(notice), "POST /cameras/clips")
            .await?;
        check_status(&response, "POST /cameras/clips")?;
        Ok(())
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, ProcessingError> {
        let response = request.send().await.map_err(|e| {
            ProcessingError::retryable(
                Code::CameraApiUnavailable,
                format!("{what}: {}", shared::error::DisplayErrorChain(&e)),
            )
        })?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ProcessingError::retryable(
                Code::CameraApiUnavailable,
                format!("{what} answered {status}"),
            ));
        }
        Ok(response)
    }
}

fn check_status(response: &reqwest::Response, what: &str) -> Result<(), ProcessingError> {
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(ProcessingError::failed(
            Code::CameraApiRejected,
            format!("{what} answered {status}"),
        ))
    }
}

async fn json_answer<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, ProcessingError> {
    check_status(&response, what)?;
    let body = response.bytes().await.map_err(|e| {
        ProcessingError::retryable(Code::CameraApiUnavailable, format!("{what}: reading the answer: {e}"))
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        ProcessingError::failed(
            Code::CameraApiRejected,
            format!(
                "{what} answered something unexpected ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        )
    })
}

fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Epoch ms as the API writes its dates: `2018-09-16T16:00:17.000Z`.
pub fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The API's dates (RFC 3339) as epoch ms.
pub fn parse_iso(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_and_read_as_the_api_does() {
        assert_eq!(iso(1_537_113_617_000), "2018-09-16T16:00:17.000Z");
        assert_eq!(parse_iso("2018-09-16T16:00:17.000Z"), Some(1_537_113_617_000));
        assert_eq!(parse_iso("2018-09-16T18:00:17+02:00"), Some(1_537_113_617_000));
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn the_seeds_recording_list_parses() {
        let listed: Vec<ListedRecording> = serde_json::from_str(
            r#"[{"startDate":"2018-09-16T16:00:17.000Z","endDate":"2018-09-16T16:10:17.000Z",
                "thumbLargeUrl":"https://x/l.png","recordingUrl":"https://rec.example/test/a.mp4",
                "thumbSmallUrl":"https://x/s.png","alias":"test"}]"#,
        )
        .unwrap();
        assert_eq!(listed[0].alias.as_deref(), Some("test"));
        assert_eq!(listed[0].recording_url, "https://rec.example/test/a.mp4");
    }

    /// The camera API's answer as the local stand-in writes it and seed 002 documents it (the
    /// stand-in is tested against the same fixture): read into the span of an origin object.
    #[test]
    fn the_shared_recording_list_fixture_resolves_to_a_recording() {
        let listed: Vec<ListedRecording> =
            serde_json::from_str(include_str!("../../../shared/fixtures/camera-api-recordings.json")).unwrap();
        let origin = crate::recordings::Origin {
            recordings_url: "https://cameras.example.com/recordings".into(),
            bucket: "origin".into(),
            dir: "recordings".into(),
        };
        let names = crate::recordings::NameFormat {
            timestamp_format: "%Y%m%dT%H%M%S".into(),
            old_file_format: false,
        };
        let recording = origin.resolve(&listed[0], &names).unwrap();
        assert_eq!(recording.key, "recordings/test/test_20180916T160017.mp4");
        assert_eq!(recording.start_ms, 1_537_113_617_000);
        assert_eq!(recording.end_ms - recording.start_ms, 600_000);
        // Without dates, the start is read from the file name as the recorder wrote it.
        let undated = ListedRecording {
            start_date: None,
            ..listed[0].clone()
        };
        assert_eq!(
            names.start_from_name(&origin.key_of(&undated.recording_url).unwrap()),
            Some(recording.start_ms)
        );
    }
}
