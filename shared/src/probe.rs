//! ffprobe's report as typed data, and the rules that turn it into "is this a video we can use".

use std::ffi::OsString;
use std::path::Path;

use serde::Deserialize;

use crate::ffmpeg::{Deadline, RunError, Supervised};
use crate::source_fence::source_fence;
use crate::{Code, ProcessingError};

/// What the pipeline needs to know about a media file.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub format_name: String,
    /// Container duration in seconds (falls back to the video stream's).
    pub duration_secs: Option<f64>,
    pub video: Option<VideoStream>,
    pub audio: Option<AudioStream>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoStream {
    pub codec: String,
    /// Coded width and height, before any rotation.
    pub width: u32,
    pub height: u32,
    /// Rotation from the display matrix or the legacy `rotate` tag, in degrees (0, 90, 180, 270).
    pub rotation: i32,
    /// Average frame rate, when the container knows it.
    pub fps: Option<f64>,
    pub pix_fmt: Option<String>,
    pub profile: Option<String>,
    pub bit_rate: Option<u64>,
    pub frame_count: Option<u64>,
    pub duration_secs: Option<f64>,
}

impl VideoStream {
    /// Width and height as displayed (ffmpeg auto-rotates, so outputs use these).
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation.rem_euclid(180) == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    pub codec: String,
    pub channels: Option<u32>,
    pub sample_rate: Option<u32>,
    /// The stream's time base as (numerator, denominator): `(1, 48000)` in an MP4 whose audio
    /// track counts samples, `(1, 1000)` in Matroska.
    pub time_base: Option<(u64, u64)>,
    /// When its first sample is shown, and how long it lasts (seconds).
    pub start_secs: Option<f64>,
    pub duration_secs: Option<f64>,
}

impl AudioStream {
    /// Whether every timestamp of the stream names a whole sample (its time base divides one
    /// sample), so that a stretch of it can be cut out by time to the sample. Not so in
    /// Matroska or MPEG-TS, whose milliseconds or 90 kHz ticks fall between samples.
    pub fn timestamps_name_samples(&self) -> bool {
        match (self.time_base, self.sample_rate) {
            (Some((num, den)), Some(rate)) if num > 0 && rate > 0 => {
                // One tick is num/den s, one sample 1/rate s: a sample is a whole number of
                // ticks when den is a multiple of num × rate.
                den % (num * u64::from(rate)) == 0
            }
            _ => false,
        }
    }
}

impl MediaInfo {
    /// The video stream, or a named rejection: an audio-only file or an image sequence is not a
    /// video for this pipeline.
    pub fn require_video(&self) -> Result<&VideoStream, ProcessingError> {
        let video = self.video.as_ref().ok_or_else(|| {
            ProcessingError::rejected(
                Code::NotVideo,
                format!("no video stream in this {} file", self.format_name),
            )
        })?;
        if video.width == 0 || video.height == 0 {
            return Err(ProcessingError::rejected(
                Code::CorruptInput,
                format!("video stream reports a size of {}x{}", video.width, video.height),
            ));
        }
        // Still images (png, jpeg, …) are "video" streams to ffprobe; they are not videos.
        let image_formats = ["image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "gif"];
        if image_formats.contains(&self.format_name.as_str()) && self.duration_secs.unwrap_or(0.0) <= 0.05 {
            return Err(ProcessingError::rejected(
                Code::NotVideo,
                format!("a still image ({}), not a video", self.format_name),
            ));
        }
        Ok(video)
    }
}

/// Runs ffprobe on a local file we trust the container of (an output of ours; a source goes
/// through [`probe_source`]). A file ffprobe cannot read is rejected as `CORRUPT_INPUT`.
pub async fn probe_file(ffprobe: &Path, file: &Path, deadline: Deadline) -> Result<MediaInfo, ProcessingError> {
    probe_file_with(ffprobe, file, deadline, &[], Unreadable::CORRUPT_FILE).await
}

/// Runs ffprobe on an uploaded source, a local file or a presigned URL, fenced in by
/// [`source_fence`]: a source its demuxers or protocols cannot read is `unreadable`.
pub async fn probe_source(
    ffprobe: &Path,
    source: &Path,
    deadline: Deadline,
    unreadable: Unreadable,
) -> Result<MediaInfo, ProcessingError> {
    probe_file_with(ffprobe, source, deadline, &source_fence(source.as_os_str()), unreadable).await
}

/// How a file that ffprobe cannot read is rejected: the code, and what the reason says before
/// ffprobe's own words.
pub struct Unreadable {
    pub code: Code,
    pub says: &'static str,
}

impl Unreadable {
    /// A source ffprobe cannot read through its presigned URL: corrupt input.
    pub const CORRUPT_SOURCE: Unreadable = Unreadable {
        code: Code::CorruptInput,
        says: "ffprobe cannot read the source",
    };
    /// A local file ffprobe cannot read (a downloaded source, an output of ours): corrupt input.
    pub const CORRUPT_FILE: Unreadable = Unreadable {
        code: Code::CorruptInput,
        says: "ffprobe cannot read the file",
    };
}

/// [`probe_file`] and [`probe_source`]: ffprobe with their input options and their rejection of
/// an unreadable file. Private, so that a source is probed only through the fence.
async fn probe_file_with(
    ffprobe: &Path,
    file: &Path,
    deadline: Deadline,
    input_options: &[OsString],
    unreadable: Unreadable,
) -> Result<MediaInfo, ProcessingError> {
    let output = Supervised::new(ffprobe, deadline)
        .args(["-v", "error"])
        .args(input_options)
        .args(["-print_format", "json", "-show_format", "-show_streams"])
        .arg(file)
        .run()
        .await
        .map_err(|err| match err {
            RunError::Exit { .. } => {
                ProcessingError::rejected(unreadable.code, format!("{}: {}", unreadable.says, err.stderr_tail()))
            }
            other => other.into_processing_error(Code::ProbeFailed),
        })?;
    parse_ffprobe_json(&output.stdout)
}

/// Parses `ffprobe -print_format json -show_format -show_streams`.
pub fn parse_ffprobe_json(json: &[u8]) -> Result<MediaInfo, ProcessingError> {
    let raw: RawProbe = serde_json::from_slice(json)
        .map_err(|e| ProcessingError::rejected(Code::CorruptInput, format!("ffprobe's report is unreadable: {e}")))?;
    let format = raw
        .format
        .ok_or_else(|| ProcessingError::rejected(Code::CorruptInput, "ffprobe found no container format"))?;
    let video = raw
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0);
    let audio = raw.streams.iter().find(|s| s.codec_type.as_deref() == Some("audio"));
    let video = video.map(|s| VideoStream {
        codec: s.codec_name.clone().unwrap_or_default(),
        width: s.width.unwrap_or(0),
        height: s.height.unwrap_or(0),
        rotation: s.rotation(),
        fps: s
            .avg_frame_rate
            .as_deref()
            .and_then(parse_ratio)
            .or_else(|| s.r_frame_rate.as_deref().and_then(parse_ratio)),
        pix_fmt: s.pix_fmt.clone(),
        profile: s.profile.clone(),
        bit_rate: s.bit_rate.as_deref().and_then(|b| b.parse().ok()),
        frame_count: s.nb_frames.as_deref().and_then(|n| n.parse().ok()),
        duration_secs: s.duration.as_deref().and_then(|d| d.parse().ok()),
    });
    let audio = audio.map(|s| AudioStream {
        codec: s.codec_name.clone().unwrap_or_default(),
        channels: s.channels,
        sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()),
        time_base: s.time_base.as_deref().and_then(|t| {
            let (num, den) = t.split_once('/')?;
            Some((num.parse().ok()?, den.parse().ok()?))
        }),
        start_secs: s.start_time.as_deref().and_then(|t| t.parse().ok()),
        duration_secs: s.duration.as_deref().and_then(|d| d.parse().ok()),
    });
    let duration_secs = format
        .duration
        .as_deref()
        .and_then(|d| d.parse::<f64>().ok())
        .or_else(|| video.as_ref().and_then(|v| v.duration_secs));
    Ok(MediaInfo {
        format_name: format.format_name.unwrap_or_default(),
        duration_secs,
        video,
        audio,
    })
}

/// `30000/1001` → 29.97; `0/0` → None.
fn parse_ratio(ratio: &str) -> Option<f64> {
    let (num, den) = ratio.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0.0 && den > 0.0).then(|| num / den)
}

#[derive(Deserialize)]
struct RawProbe {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawDisposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    profile: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    pix_fmt: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    bit_rate: Option<String>,
    nb_frames: Option<String>,
    duration: Option<String>,
    channels: Option<u32>,
    sample_rate: Option<String>,
    time_base: Option<String>,
    start_time: Option<String>,
    #[serde(default)]
    disposition: RawDisposition,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
}

impl RawStream {
    fn rotation(&self) -> i32 {
        let from_side_data = self
            .side_data_list
            .iter()
            .find_map(|sd| sd.get("rotation").and_then(|r| r.as_f64()))
            .map(|r| r.round() as i32);
        let from_tag = self.tags.get("rotate").and_then(|r| r.parse::<i32>().ok());
        from_side_data.or(from_tag).unwrap_or(0).rem_euclid(360)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{
      "streams": [
        {"index":0,"codec_name":"h264","codec_type":"video","profile":"High","width":1920,"height":1080,
         "pix_fmt":"yuv420p","r_frame_rate":"30/1","avg_frame_rate":"30000/1001","duration":"10.010000",
         "bit_rate":"4000000","nb_frames":"300","disposition":{"attached_pic":0},
         "side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]},
        {"index":1,"codec_name":"aac","codec_type":"audio","sample_rate":"48000","channels":2,
         "time_base":"1/48000","start_time":"0.000000","duration":"10.026667",
         "disposition":{"attached_pic":0}}
      ],
      "format": {"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"10.026667"}
    }"#;

    #[test]
    fn parses_a_typical_report() {
        let info = parse_ffprobe_json(REPORT.as_bytes()).unwrap();
        let video = info.require_video().unwrap();
        assert_eq!((video.width, video.height), (1920, 1080));
        assert_eq!(video.rotation, 270);
        assert_eq!(video.display_size(), (1080, 1920));
        assert!((video.fps.unwrap() - 29.97).abs() < 0.01);
        assert_eq!(video.frame_count, Some(300));
        let audio = info.audio.as_ref().unwrap();
        assert_eq!(audio.channels, Some(2));
        assert_eq!(audio.time_base, Some((1, 48000)));
        assert_eq!((audio.start_secs, audio.duration_secs), (Some(0.0), Some(10.026667)));
        assert!(audio.timestamps_name_samples());
        assert!((info.duration_secs.unwrap() - 10.026667).abs() < 1e-6);
    }

    #[test]
    fn audio_only_is_not_a_video() {
        let report = r#"{"streams":[{"codec_type":"audio","codec_name":"mp3"}],
                         "format":{"format_name":"mp3","duration":"3.0"}}"#;
        let err = parse_ffprobe_json(report.as_bytes())
            .unwrap()
            .require_video()
            .unwrap_err();
        assert_eq!(err.code(), Code::NotVideo);
    }

    #[test]
    fn cover_art_is_not_a_video_stream() {
        let report = r#"{"streams":[{"codec_type":"audio","codec_name":"aac"},
            {"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,"disposition":{"attached_pic":1}}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"3.0"}}"#;
        let info = parse_ffprobe_json(report.as_bytes()).unwrap();
        assert!(info.video.is_none());
    }

    #[test]
    fn a_still_image_is_not_a_video() {
        let report = r#"{"streams":[{"codec_type":"video","codec_name":"png","width":64,"height":64}],
                         "format":{"format_name":"png_pipe"}}"#;
        let err = parse_ffprobe_json(report.as_bytes())
            .unwrap()
            .require_video()
            .unwrap_err();
        assert_eq!(err.code(), Code::NotVideo);
    }

    #[test]
    fn garbage_is_corrupt_input() {
        assert_eq!(parse_ffprobe_json(b"not json").unwrap_err().code(), Code::CorruptInput);
        assert_eq!(parse_ffprobe_json(b"{}").unwrap_err().code(), Code::CorruptInput);
    }

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio("25/1"), Some(25.0));
        assert_eq!(parse_ratio("0/0"), None);
        assert_eq!(parse_ratio("junk"), None);
    }

    #[test]
    fn audio_timestamps_name_samples_only_when_the_time_base_divides_a_sample() {
        let audio = |time_base: Option<(u64, u64)>, sample_rate: Option<u32>| AudioStream {
            codec: "aac".into(),
            channels: Some(2),
            sample_rate,
            time_base,
            start_secs: Some(0.0),
            duration_secs: Some(60.0),
        };
        assert!(audio(Some((1, 48000)), Some(48000)).timestamps_name_samples());
        assert!(audio(Some((1, 96000)), Some(48000)).timestamps_name_samples());
        assert!(audio(Some((1, 44100)), Some(44100)).timestamps_name_samples());
        // Matroska's milliseconds, MPEG-TS's 90 kHz: between samples.
        assert!(!audio(Some((1, 1000)), Some(48000)).timestamps_name_samples());
        assert!(!audio(Some((1, 90000)), Some(48000)).timestamps_name_samples());
        assert!(!audio(Some((1, 48000)), Some(44100)).timestamps_name_samples());
        assert!(!audio(None, Some(48000)).timestamps_name_samples());
        assert!(!audio(Some((1, 48000)), None).timestamps_name_samples());
    }
}
