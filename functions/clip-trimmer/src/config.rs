//! The trimmer's settings, read once at cold start from the environment (the original
//! service's variable names), and the keys and URLs they make.

use std::path::PathBuf;
use std::time::Duration;

use shared::config::{ConfigError, EnvReader};

use crate::recordings::{NameFormat, Origin};
use crate::request::ClipRequest;
use crate::schedule::Limits;

/// Every setting, typed; [`Config::from_env`] names every missing or malformed variable at once.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CLIP_DOWNLOAD_DEST`: where recordings and pieces are kept while a clip is made.
    pub download_dest: PathBuf,
    /// `TIMESTAMP_FORMAT` / `OLD_FILE_FORMAT`: how recording names carry their start.
    pub names: NameFormat,
    /// `SQS_RETRY_LIMIT` / `OUT_OF_RANGE_LIMIT` (seconds in the environment).
    pub limits: Limits,
    /// `CAM_SERVICES_URL`
    pub camera_api_url: String,
    /// `CAMERA_API_TIMEOUT_SECS` (default 10)
    pub camera_api_timeout: Duration,
    /// `CLIP_URL`: the public base URL of the destination bucket (the CloudFront domain).
    pub clip_url: String,
    /// `RECORDINGS_URL`, `S3_BUCKET_ORIGIN`, `S3_BUCKET_ORIGIN_DIR`
    pub origin: Origin,
    /// `THUMBNAIL_SIZES` (default 300,640,1500,3000)
    pub thumbnail_sizes: Vec<u32>,
    /// `VIDEO_MAX_LEN` (seconds; default 600)
    pub max_len_ms: i64,
    /// `S3_BUCKET_DESTINATION` and `CLIP_KEY_PREFIX` (default `clips/`)
    pub destination_bucket: String,
    pub key_prefix: String,
    /// `AWS_SNS_TOPIC`: where results go.
    pub topic_arn: String,
    /// `AWS_SQS_QUEUE_URL`: the queue requests come from and are re-queued to.
    pub queue_url: String,
    /// `SQS_TIMEOUT`: the delay of a re-queued request, seconds (SQS allows at most 900).
    pub requeue_delay_secs: i32,
    /// `DEAD_LETTER_QUEUE_URL`: messages that are not requests at all are parked there.
    pub dead_letter_queue_url: String,
    /// `GAP_TOLERANCE_MS` (default 1000): a hole between recordings up to this long is
    /// reported in the result rather than making the clip unavailable.
    pub gap_tolerance_ms: i64,
    /// `FFMPEG_PATH` / `FFPROBE_PATH`
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// `DEADLINE_MARGIN_SECS` (default 15): time kept after ffmpeg for uploads and results.
    pub deadline_margin: Duration,
    /// `MIN_SECS_PER_CLIP` (default 20): a clip is not started with less time left.
    pub min_time_per_clip: Duration,
    /// `MAX_DEADLINE_REQUEUES` (default 3)
    pub max_deadline_requeues: u32,
    /// `RETRY_BACKOFF_SECS` (default 10): the first redelivery delay after a retryable fault;
    /// doubled on every further receive, at most 900.
    pub retry_backoff_secs: i32,
    /// `MAX_RECEIVE_COUNT` (default 3): the queue's `maxReceiveCount`. A fault on this delivery
    /// is answered `CLIP_FAILED` before the request moves to the DLQ.
    pub max_receive_count: u32,
}

impl Config {
    pub fn from_env(mut env: EnvReader) -> Result<Self, ConfigError> {
        let old_file_format = parse_bool(&env.optional_or("OLD_FILE_FORMAT", "false".to_owned()));
        env.check(old_file_format.is_some(), "OLD_FILE_FORMAT", "must be true or false");
        let old_file_format = old_file_format.unwrap_or(false);
        let default_format = if old_file_format {
            "%Y%m%dT%H%M"
        } else {
            "%Y%m%dT%H%M%S"
        };
        let requeue_delay_secs: i32 = env.optional_or("SQS_TIMEOUT", 60);
        env.check(
            (0..=900).contains(&requeue_delay_secs),
            "SQS_TIMEOUT",
            "must be 0 to 900 seconds (SQS's longest delay)",
        );
        let thumbnail_sizes: Vec<u32> = env.list_or("THUMBNAIL_SIZES", vec![300, 640, 1500, 3000]);
        env.check(
            thumbnail_sizes.iter().all(|w| (16..=8192).contains(w)),
            "THUMBNAIL_SIZES",
            "widths must be 16 to 8192 px",
        );
        let max_len_secs: i64 = env.optional_or("VIDEO_MAX_LEN", 600);
        env.check(max_len_secs > 0, "VIDEO_MAX_LEN", "must be positive (seconds)");
        let config = Config {
            download_dest: env.optional_or("CLIP_DOWNLOAD_DEST", std::env::temp_dir()),
            names: NameFormat {
                timestamp_format: env.optional_or("TIMESTAMP_FORMAT", default_format.to_owned()),
                old_file_format,
            },
            limits: Limits {
                retry_limit_ms: env.optional_or::<i64>("SQS_RETRY_LIMIT", 15 * 60) * 1000,
                out_of_range_ms: env.optional_or::<i64>("OUT_OF_RANGE_LIMIT", 3 * 86_400) * 1000,
            },
            camera_api_url: env.required("CAM_SERVICES_URL"),
            camera_api_timeout: Duration::from_secs(env.optional_or("CAMERA_API_TIMEOUT_SECS", 10)),
            clip_url: env.required::<String>("CLIP_URL").trim_end_matches('/').to_owned(),
            origin: Origin {
                recordings_url: env.required("RECORDINGS_URL"),
                bucket: env.required("S3_BUCKET_ORIGIN"),
                dir: env.optional_or("S3_BUCKET_ORIGIN_DIR", String::new()),
            },
            thumbnail_sizes,
            max_len_ms: max_len_secs * 1000,
            destination_bucket: env.required("S3_BUCKET_DESTINATION"),
            key_prefix: env.optional_or("CLIP_KEY_PREFIX", "clips/".to_owned()),
            topic_arn: env.required("AWS_SNS_TOPIC"),
            queue_url: env.required("AWS_SQS_QUEUE_URL"),
            requeue_delay_secs,
            dead_letter_queue_url: env.required("DEAD_LETTER_QUEUE_URL"),
            gap_tolerance_ms: env.optional_or("GAP_TOLERANCE_MS", 1000),
            ffmpeg: env.optional_or("FFMPEG_PATH", PathBuf::from("ffmpeg")),
            ffprobe: env.optional_or("FFPROBE_PATH", PathBuf::from("ffprobe")),
            deadline_margin: Duration::from_secs(env.optional_or("DEADLINE_MARGIN_SECS", 15)),
            min_time_per_clip: Duration::from_secs(env.optional_or("MIN_SECS_PER_CLIP", 20)),
            max_deadline_requeues: env.optional_or("MAX_DEADLINE_REQUEUES", 3),
            retry_backoff_secs: env.optional_or("RETRY_BACKOFF_SECS", 10),
            max_receive_count: env.optional_or("MAX_RECEIVE_COUNT", 3),
        };
        env.finish()?;
        Ok(config)
    }

    /// `clips/<cameraId>/<clipId>.mp4`, and the thumbnails beside it as
    /// `clips/<cameraId>/<clipId><width>.png` (seed 002's shape, under our prefix).
    pub fn clip_key(&self, request: &ClipRequest) -> String {
        format!("{}{}/{}.mp4", self.key_prefix, request.camera_id, request.clip_id)
    }

    pub fn thumbnail_key(&self, request: &ClipRequest, size: &str) -> String {
        format!("{}{}/{}{size}.png", self.key_prefix, request.camera_id, request.clip_id)
    }

    pub fn public_url(&self, key: &str) -> String {
        format!("{}/{key}", self.clip_url)
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The settings every deployment has, plus `extra`.
    pub(crate) fn config(extra: &[(&str, &str)]) -> Config {
        Config::from_env(env(extra)).unwrap()
    }

    /// A request with made-up values, for the fields a test does not look at.
    fn placeholder_request() -> ClipRequest {
        ClipRequest {
            clip_id: String::new(),
            camera_id: String::new(),
            start_timestamp_in_ms: 0,
            end_timestamp_in_ms: 0,
            retry_timestamps: Vec::new(),
            deadline_requeues: 0,
        }
    }

    fn env<'a>(extra: &[(&'a str, &'a str)]) -> EnvReader {
        let mut pairs = vec![
            ("CAM_SERVICES_URL", "http://cams.local"),
            ("CLIP_URL", "https://d111.cloudfront.net/"),
            ("RECORDINGS_URL", "https://recordings.example.com"),
            ("S3_BUCKET_ORIGIN", "origin"),
            ("S3_BUCKET_DESTINATION", "video-suite-output-000000000000"),
            ("AWS_SNS_TOPIC", "arn:aws:sns:us-east-1:000000000000:results"),
            ("AWS_SQS_QUEUE_URL", "http://localhost/000000000000/clips"),
            ("DEAD_LETTER_QUEUE_URL", "http://localhost/000000000000/clips-dlq"),
        ];
        pairs.extend_from_slice(extra);
        EnvReader::from_pairs(pairs)
    }

    #[test]
    fn the_seeds_defaults() {
        let config = Config::from_env(env(&[])).unwrap();
        assert_eq!(config.limits.retry_limit_ms, 15 * 60 * 1000);
        assert_eq!(config.limits.out_of_range_ms, 3 * 86_400 * 1000);
        assert_eq!(config.thumbnail_sizes, [300, 640, 1500, 3000]);
        assert_eq!(config.names.timestamp_format, "%Y%m%dT%H%M%S");
        let old = Config::from_env(env(&[("OLD_FILE_FORMAT", "True")])).unwrap();
        assert!(old.names.old_file_format);
        assert_eq!(old.names.timestamp_format, "%Y%m%dT%H%M");
    }

    #[test]
    fn bad_settings_are_all_named() {
        let err = Config::from_env(env(&[
            ("SQS_TIMEOUT", "901"),
            ("THUMBNAIL_SIZES", "300,0"),
            ("OLD_FILE_FORMAT", "maybe"),
        ]))
        .unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(names, ["OLD_FILE_FORMAT", "SQS_TIMEOUT", "THUMBNAIL_SIZES"]);
        let missing = Config::from_env(EnvReader::from_pairs([])).unwrap_err();
        assert_eq!(missing.problems.len(), 8, "{missing}");
    }

    #[test]
    fn keys_and_links_have_the_seeds_shape() {
        let config = Config::from_env(env(&[])).unwrap();
        let request = ClipRequest {
            clip_id: "1111111111111".into(),
            camera_id: "2222".into(),
            ..placeholder_request()
        };
        assert_eq!(config.clip_key(&request), "clips/2222/1111111111111.mp4");
        assert_eq!(
            config.thumbnail_key(&request, "{size}"),
            "clips/2222/1111111111111{size}.png"
        );
        assert_eq!(
            config.public_url(&config.clip_key(&request)),
            "https://d111.cloudfront.net/clips/2222/1111111111111.mp4"
        );
    }
}
