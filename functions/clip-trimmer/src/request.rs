//! Clip requests as they arrive on the queue, in either of the two styles seen in the wild:
//! JSON, and the Python-dict `repr` the original service sent (`{'clipId': '1', ...}`).
//!
//! The Python style is read with the `json5` crate: JSON5 is a superset of JSON that accepts
//! single-quoted strings, which is all a `repr` of this dict needs (its values are strings,
//! integers and a list of integers). A `repr` using `True`/`False`/`None` is not JSON5 and is
//! rejected with the parser's message, which names the position.

pub use shared::contracts::clip::ClipRequest;
use shared::error::truncate_chars;
use shared::{Code, ProcessingError};

/// Longest id accepted: ids become parts of S3 keys and URLs.
const MAX_ID_LEN: usize = 128;
/// A request re-queued more often than this is not a request but a loop.
const MAX_RETRY_TIMESTAMPS: usize = 200;

/// Which style a body was written in (logged, so a producer's style can be seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStyle {
    Json,
    PythonDict,
}

/// Parses a request body. Anything that is not a request in one of the two styles is a
/// [`Code::ClipInvalid`] rejection naming what is wrong.
pub fn parse(body: &str) -> Result<(ClipRequest, BodyStyle), ProcessingError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(ProcessingError::rejected(
            Code::ClipInvalid,
            "the message body is empty",
        ));
    }
    match serde_json::from_str::<ClipRequest>(body) {
        Ok(request) => Ok((request, BodyStyle::Json)),
        // Valid JSON of the wrong shape: the JSON error is the one that explains it.
        Err(err) if !err.is_syntax() && !err.is_eof() => Err(ProcessingError::rejected(
            Code::ClipInvalid,
            format!("not a clip request: {err}"),
        )),
        Err(json_err) => match json5::from_str::<ClipRequest>(body) {
            Ok(request) => Ok((request, BodyStyle::PythonDict)),
            Err(json5_err) => Err(ProcessingError::rejected(
                Code::ClipInvalid,
                format!("not a clip request in JSON ({json_err}) nor in the Python-dict style ({json5_err})"),
            )),
        },
    }
}

/// Best effort: the ids of a body that did not parse as a request, so its rejection can still
/// name them.
pub fn salvage_ids(body: &str) -> (Option<String>, Option<String>) {
    let value: Option<serde_json::Value> = serde_json::from_str(body).ok().or_else(|| json5::from_str(body).ok());
    let id = |name: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .filter(|s| is_safe_id(s))
            .map(str::to_owned)
    };
    (id("clipId"), id("cameraId"))
}

/// Checks what can be checked without asking anyone: ids usable in keys, a range that is a
/// range, a length within `VIDEO_MAX_LEN` (`max_len_ms`).
pub fn validate(request: &ClipRequest, max_len_ms: i64) -> Result<(), ProcessingError> {
    let invalid = |reason: String| Err(ProcessingError::rejected(Code::ClipInvalid, reason));
    for (name, id) in [("clipId", &request.clip_id), ("cameraId", &request.camera_id)] {
        if !is_safe_id(id) {
            return invalid(format!(
                "{name} {:?} is not a safe id (1 to {MAX_ID_LEN} characters of A-Z a-z 0-9 . _ -, not only dots)",
                truncate_chars(id, 80)
            ));
        }
    }
    if request.start_timestamp_in_ms < 0 {
        return invalid(format!(
            "startTimestampInMs {} is before 1970",
            request.start_timestamp_in_ms
        ));
    }
    if request.end_timestamp_in_ms <= request.start_timestamp_in_ms {
        return invalid(format!(
            "endTimestampInMs {} is not after startTimestampInMs {}",
            request.end_timestamp_in_ms, request.start_timestamp_in_ms
        ));
    }
    if request.duration_ms() > max_len_ms {
        return invalid(format!(
            "the clip would last {} ms; VIDEO_MAX_LEN allows {} ms",
            request.duration_ms(),
            max_len_ms
        ));
    }
    if request.retry_timestamps.len() > MAX_RETRY_TIMESTAMPS {
        return invalid(format!(
            "retryTimestamps has {} entries (at most {MAX_RETRY_TIMESTAMPS})",
            request.retry_timestamps.len()
        ));
    }
    Ok(())
}

/// Ids end up in S3 keys and URLs: letters, digits, `.`, `_` and `-` only, and not a path
/// component of their own (`.`, `..`).
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !id.bytes().all(|b| b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_BODY: &str = "{'clipId': '1111111111111', 'retryTimestamps': [], 'cameraId': '1111111111111', 'startTimestampInMs': 1537119363000, 'endTimestampInMs': 1537119423000}";

    #[test]
    fn the_seeds_python_dict_body_parses() {
        let (request, style) = parse(SEED_BODY).unwrap();
        assert_eq!(style, BodyStyle::PythonDict);
        assert_eq!(request.clip_id, "1111111111111");
        assert_eq!(request.duration_ms(), 60_000);
        assert!(request.retry_timestamps.is_empty());
    }

    #[test]
    fn json_bodies_parse_and_round_trip() {
        let json = r#"{"clipId":"c1","cameraId":"cam-1","startTimestampInMs":1000,"endTimestampInMs":5000,"retryTimestamps":[7,8]}"#;
        let (request, style) = parse(json).unwrap();
        assert_eq!(style, BodyStyle::Json);
        assert_eq!(request.retry_timestamps, vec![7, 8]);
        let again = serde_json::to_string(&request).unwrap();
        assert_eq!(parse(&again).unwrap().0, request);
        assert!(!again.contains("deadlineRequeues"), "{again}");
    }

    #[test]
    fn malformed_bodies_are_named_rejections() {
        for body in [
            "",
            "   ",
            "not json",
            "[1,2]",
            "{'clipId': 'a'}",
            r#"{"clipId":"a","cameraId":"b","startTimestampInMs":"soon","endTimestampInMs":2}"#,
            "{'clipId': 'a', 'cameraId': 'b', 'startTimestampInMs': 1, 'endTimestampInMs': 2, 'x': None}",
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.code, Code::ClipInvalid, "{body:?}");
            assert!(!err.reason.is_empty());
        }
    }

    fn request(start: i64, end: i64) -> ClipRequest {
        ClipRequest {
            clip_id: "clip-1".into(),
            camera_id: "cam_1".into(),
            start_timestamp_in_ms: start,
            end_timestamp_in_ms: end,
            retry_timestamps: vec![],
            deadline_requeues: 0,
        }
    }

    #[test]
    fn impossible_ranges_and_lengths_are_rejected() {
        let max = 600_000;
        assert!(validate(&request(1000, 2000), max).is_ok());
        for (start, end, says) in [
            (2000, 1000, "is not after"),
            (1000, 1000, "is not after"),
            (-5, 1000, "before 1970"),
            (0, 600_001, "VIDEO_MAX_LEN allows 600000 ms"),
        ] {
            let err = validate(&request(start, end), max).unwrap_err();
            assert!(err.reason.contains(says), "{start}..{end}: {}", err.reason);
        }
    }

    #[test]
    fn ids_that_could_escape_a_key_are_rejected() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "x\u{e9}",
            "-i;rm",
            &"x".repeat(129),
        ] {
            let mut r = request(0, 1);
            r.camera_id = bad.to_owned();
            assert!(validate(&r, 10).is_err(), "{bad:?}");
        }
        for good in ["1111111111111", "cam-1", "a.b_c", "-i"] {
            assert!(is_safe_id(good), "{good:?}");
        }
    }

    #[test]
    fn ids_are_salvaged_for_the_rejection_of_an_unparsable_request() {
        assert_eq!(
            salvage_ids("{'clipId': 'c9', 'cameraId': 'k/../x'}"),
            (Some("c9".into()), None)
        );
        assert_eq!(salvage_ids("garbage"), (None, None));
    }
}
