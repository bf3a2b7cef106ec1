//! S3 event notifications: their records, key decoding, and the test event S3 sends when a
//! notification is set up.
//!
//! S3 writes object keys in events form-urlencoded: a space arrives as `+`, a literal `+` as
//! `%2B`, and non-ASCII as percent-encoded UTF-8 (some emulators even encode `/` as `%2F`).
//! A key must be decoded (first `+` → space, then percent-decoding) before it is used with
//! GetObject; the seed's MediaConvert function broke on spaces because it skipped this.

use percent_encoding::percent_decode_str;

use crate::{Code, ProcessingError};

/// S3's limit on the length of an object key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// How much of a key that cannot be used (not UTF-8, longer than S3 allows) a rejection names.
pub const SHOWN_KEY_CHARS: usize = 256;

/// Decodes an S3 event's object key. Fails, as a rejection, when the decoded bytes are not
/// UTF-8 (`MALFORMED_EVENT`) or the key is longer than [`MAX_KEY_BYTES`] (`KEY_TOO_LONG`). S3
/// itself produces neither; a forged or corrupt event can, and a message naming such a key
/// would exceed SNS's message size and fail on every retry. Name the key in the rejection with
/// [`shown_key`].
pub fn decode_key(encoded: &str) -> Result<String, ProcessingError> {
    let plus_as_space = encoded.replace('+', " ");
    let key = percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| {
            ProcessingError::rejected(
                Code::MalformedEvent,
                format!("object key {:?} does not decode to UTF-8: {e}", shown_key(encoded)),
            )
        })?;
    if key.len() > MAX_KEY_BYTES {
        return Err(ProcessingError::rejected(
            Code::KeyTooLong,
            format!(
                "the key is {} bytes; S3 keys are at most {MAX_KEY_BYTES} (shown cut to {SHOWN_KEY_CHARS} characters)",
                key.len()
            ),
        ));
    }
    Ok(key)
}

/// The key that [`decode_key`] refused, cut to [`SHOWN_KEY_CHARS`] for the rejection that names
/// it.
pub fn shown_key(encoded: &str) -> String {
    crate::error::truncate_chars(encoded, SHOWN_KEY_CHARS)
}

/// S3 sends `{"Service":"Amazon S3","Event":"s3:TestEvent",...}` (no `Records`) once, when a
/// notification configuration is saved. It carries no object and is skipped.
pub fn is_test_event(event: &serde_json::Value) -> bool {
    event.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent")
}

/// The records of an S3 notification, or `None` for the [test event](is_test_event), which has
/// none and is skipped. An event that is neither is a named rejection.
pub fn records(event: &serde_json::Value) -> Result<Option<&[serde_json::Value]>, ProcessingError> {
    if is_test_event(event) {
        return Ok(None);
    }
    event
        .get("Records")
        .and_then(serde_json::Value::as_array)
        .map(|records| Some(records.as_slice()))
        .ok_or_else(|| {
            ProcessingError::rejected(
                Code::MalformedEvent,
                "the event has no Records array: not an S3 notification",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_spaces_plus_percent_and_unicode() {
        let cases = [
            ("plain.mp4", "plain.mp4"),
            ("my+video.mp4", "my video.mp4"),
            ("a%2Bb.mp4", "a+b.mp4"),
            ("100%25+done.mp4", "100% done.mp4"),
            ("caf%C3%A9+%F0%9F%8E%AC.mov", "café 🎬.mov"),
            ("uploads/2024/01/clip.mp4", "uploads/2024/01/clip.mp4"),
            ("uploads%2Fnested%2Fclip.mp4", "uploads/nested/clip.mp4"),
            ("my+demo%2Bclip.mp4", "my demo+clip.mp4"),
            ("%E6%97%A5%E6%9C%AC/%E5%8B%95%E7%94%BB.mp4", "日本/動画.mp4"),
        ];
        for (encoded, expected) in cases {
            assert_eq!(decode_key(encoded).unwrap(), expected, "decoding {encoded}");
        }
    }

    #[test]
    fn a_lone_percent_sign_is_kept_literally() {
        // Not valid percent-encoding: nothing to decode, so the key is taken as written.
        assert_eq!(decode_key("50%off.mp4").unwrap(), "50%off.mp4");
    }

    #[test]
    fn invalid_utf8_is_a_named_rejection() {
        let err = decode_key("bad%FF.mp4").unwrap_err();
        assert_eq!(err.code(), Code::MalformedEvent);
    }

    #[test]
    fn a_key_longer_than_s3_allows_is_refused_by_name() {
        let longest = format!("{}.mp4", "k".repeat(MAX_KEY_BYTES - 4));
        assert_eq!(decode_key(&longest).unwrap(), longest);
        // `%C3%A9` is six characters in the event and two bytes ("é") decoded: the limit is on
        // the decoded key.
        let encoded = "%C3%A9".repeat(MAX_KEY_BYTES / 2 + 1);
        let err = decode_key(&encoded).unwrap_err();
        assert_eq!(err.code(), Code::KeyTooLong);
        assert!(!err.is_retryable());
        assert_eq!(shown_key(&encoded).chars().count(), SHOWN_KEY_CHARS);
    }

    #[test]
    fn recognises_the_test_event() {
        let test_event = serde_json::json!({
            "Service": "Amazon S3", "Event": "s3:TestEvent",
            "Time": "2024-01-01T00:00:00.000Z", "Bucket": "b", "RequestId": "r", "HostId": "h"
        });
        assert!(is_test_event(&test_event));
        assert!(!is_test_event(&serde_json::json!({"Records": []})));
    }

    #[test]
    fn records_skip_the_test_event_and_reject_what_is_not_a_notification() {
        let test_event = serde_json::json!({"Service": "Amazon S3", "Event": "s3:TestEvent"});
        assert_eq!(records(&test_event).unwrap(), None);
        let event = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put"}]});
        assert_eq!(records(&event).unwrap().map(<[_]>::len), Some(1));
        assert_eq!(
            records(&serde_json::json!({"hello": "world"})).unwrap_err().code(),
            Code::MalformedEvent
        );
    }
}
