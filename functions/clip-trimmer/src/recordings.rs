//! From the camera API's recording list to objects in the origin bucket.
//!
//! A `recordingUrl` is trusted only inside `RECORDINGS_URL`: the rest of its path, decoded,
//! is the key under `S3_BUCKET_ORIGIN_DIR`. Anything else (another host, `..`, a query) is a
//! named failure, so an API answer can never point the function at an arbitrary object or URL.
//!
//! A recording without a `startDate` gets its start from its file name, read with
//! `TIMESTAMP_FORMAT` (the last `_`-separated part of the name, extension removed), as the
//! original service did; with `OLD_FILE_FORMAT` the names carry minutes only.

use chrono::NaiveDateTime;
use shared::error::truncate_chars;
use shared::{Code, ProcessingError};

use crate::camera_api::{parse_iso, ListedRecording};
use crate::schedule::Recording;

#[derive(Debug, Clone)]
pub struct NameFormat {
    /// `TIMESTAMP_FORMAT`, a chrono/strftime pattern such as `%Y%m%dT%H%M%S`.
    pub timestamp_format: String,
    /// `OLD_FILE_FORMAT`: names carry no seconds.
    pub old_file_format: bool,
}

impl NameFormat {
    /// The recording's start from its file name, in epoch ms (names are in UTC).
    pub fn start_from_name(&self, key: &str) -> Option<i64> {
        let name = key.rsplit('/').next()?;
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        let stamp = stem.rsplit('_').next()?;
        let parsed = if self.old_file_format {
            // chrono needs seconds to make a time; old names stop at the minute.
            NaiveDateTime::parse_from_str(&format!("{stamp}00"), &format!("{}%S", self.timestamp_format))
        } else {
            NaiveDateTime::parse_from_str(stamp, &self.timestamp_format)
        };
        parsed.ok().map(|t| t.and_utc().timestamp_millis())
    }

    /// The file name for a recording starting at `start_ms` (the local stand-in and the demo
    /// name recordings this way).
    pub fn name_for(&self, alias: &str, start_ms: i64) -> String {
        let time = chrono::DateTime::from_timestamp_millis(start_ms).unwrap_or_default();
        format!("{alias}_{}.mp4", time.format(&self.timestamp_format))
    }
}

/// Where recordings live: `RECORDINGS_URL` maps onto `s3://S3_BUCKET_ORIGIN/S3_BUCKET_ORIGIN_DIR`.
#[derive(Debug, Clone)]
pub struct Origin {
    pub recordings_url: String,
    pub bucket: String,
    pub dir: String,
}

impl Origin {
    /// The origin key of a `recordingUrl`, or a named failure if it points anywhere else.
    pub fn key_of(&self, recording_url: &str) -> Result<String, ProcessingError> {
        let unusable = |why: &str| {
            Err(ProcessingError::failed(
                Code::RecordingUnusable,
                format!("recordingUrl {:?} {why}", truncate_chars(recording_url, 200)),
            ))
        };
        let base = self.recordings_url.trim_end_matches('/');
        let Some(rest) = recording_url.strip_prefix(base).and_then(|r| r.strip_prefix('/')) else {
            return unusable(&format!("is not under RECORDINGS_URL {base}"));
        };
        if rest.is_empty() || rest.contains(['?', '#']) {
            return unusable("has no object path, or has a query or fragment");
        }
        let decoded = match percent_encoding::percent_decode_str(rest).decode_utf8() {
            Ok(decoded) => decoded.into_owned(),
            Err(_) => return unusable("is not UTF-8 once decoded"),
        };
        if decoded
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return unusable("has an empty, `.` or `..` path segment");
        }
        let dir = self.dir.trim_matches('/');
        Ok(if dir.is_empty() {
            decoded
        } else {
            format!("{dir}/{decoded}")
        })
    }

    /// The `recordingUrl` of an origin key (the inverse of [`Self::key_of`]).
    pub fn url_of(&self, key: &str) -> Option<String> {
        let dir = self.dir.trim_matches('/');
        let rest = if dir.is_empty() {
            key
        } else {
            key.strip_prefix(dir)?.strip_prefix('/')?
        };
        Some(format!(
            "{}/{}",
            self.recordings_url.trim_end_matches('/'),
            shared::storage::key_url_path(rest)
        ))
    }

    /// A listed recording as a time span of an origin object.
    pub fn resolve(&self, listed: &ListedRecording, names: &NameFormat) -> Result<Recording, ProcessingError> {
        let key = self.key_of(&listed.recording_url)?;
        let start = match &listed.start_date {
            Some(date) => parse_iso(date),
            None => names.start_from_name(&key),
        };
        let end = listed.end_date.as_deref().and_then(parse_iso);
        match (start, end) {
            (Some(start_ms), Some(end_ms)) if end_ms > start_ms => Ok(Recording { start_ms, end_ms, key }),
            _ => Err(ProcessingError::failed(
                Code::RecordingUnusable,
                format!(
                    "recording {key:?} has no usable start/end (startDate {:?}, endDate {:?})",
                    listed.start_date, listed.end_date
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(dir: &str) -> Origin {
        Origin {
            recordings_url: "https://recordings.example.com/rewind/".into(),
            bucket: "origin".into(),
            dir: dir.into(),
        }
    }

    #[test]
    fn recording_urls_map_to_origin_keys_and_back() {
        let o = origin("recordings");
        let key = o
            .key_of("https://recordings.example.com/rewind/test/test%20cam_20180916T160017.mp4")
            .unwrap();
        assert_eq!(key, "recordings/test/test cam_20180916T160017.mp4");
        assert_eq!(
            o.url_of(&key).unwrap(),
            "https://recordings.example.com/rewind/test/test%20cam_20180916T160017.mp4"
        );
        assert_eq!(
            origin("")
                .key_of("https://recordings.example.com/rewind/a.mp4")
                .unwrap(),
            "a.mp4"
        );
    }

    #[test]
    fn recording_urls_pointing_elsewhere_are_refused() {
        let o = origin("recordings");
        for url in [
            "https://evil.example.com/rewind/a.mp4",
            "https://recordings.example.com/rewindx/a.mp4",
            "https://recordings.example.com/rewind/../secret",
            "https://recordings.example.com/rewind/a/%2e%2e/b",
            "https://recordings.example.com/rewind/a.mp4?x=1",
            "https://recordings.example.com/rewind/",
            "file:///etc/passwd",
        ] {
            let err = o.key_of(url).unwrap_err();
            assert_eq!(err.code, Code::RecordingUnusable, "{url}");
        }
    }

    #[test]
    fn starts_are_read_from_names_in_both_formats() {
        let new = NameFormat {
            timestamp_format: "%Y%m%dT%H%M%S".into(),
            old_file_format: false,
        };
        assert_eq!(
            new.start_from_name("recordings/test/test_20180916T160017.mp4"),
            Some(1_537_113_617_000)
        );
        assert_eq!(new.name_for("test", 1_537_113_617_000), "test_20180916T160017.mp4");
        assert_eq!(new.start_from_name("recordings/test/garbage.mp4"), None);
        let old = NameFormat {
            timestamp_format: "%Y%m%dT%H%M".into(),
            old_file_format: true,
        };
        assert_eq!(old.start_from_name("test_20180916T1600.mp4"), Some(1_537_113_600_000));
    }

    #[test]
    fn listed_recordings_resolve_with_dates_or_names() {
        let o = origin("recordings");
        let names = NameFormat {
            timestamp_format: "%Y%m%dT%H%M%S".into(),
            old_file_format: false,
        };
        let listed = |start: Option<&str>, end: Option<&str>| ListedRecording {
            start_date: start.map(str::to_owned),
            end_date: end.map(str::to_owned),
            recording_url: "https://recordings.example.com/rewind/test/test_20180916T160017.mp4".into(),
            alias: Some("test".into()),
            thumb_large_url: None,
            thumb_small_url: None,
        };
        let r = o
            .resolve(&listed(None, Some("2018-09-16T16:10:17.000Z")), &names)
            .unwrap();
        assert_eq!((r.start_ms, r.end_ms), (1_537_113_617_000, 1_537_114_217_000));
        assert!(o
            .resolve(
                &listed(Some("2018-09-16T16:10:17.000Z"), Some("2018-09-16T16:00:17.000Z")),
                &names
            )
            .is_err());
        assert!(o.resolve(&listed(None, None), &names).is_err());
    }
}
