//! Sample media made with ffmpeg's lavfi sources: a test pattern with a running clock (and a
//! tone), as one file or as a camera's consecutive recordings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shared::ffmpeg::{ffmpeg_base_args, Deadline, Supervised};

use crate::BoxError;

/// A sample video made by ffmpeg's lavfi sources: a test pattern with a running clock, and a
/// tone when `with_audio`.
#[derive(Debug, Clone, Copy)]
pub struct SampleSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub seconds: f64,
    pub with_audio: bool,
}

pub async fn make_sample(spec: SampleSpec, output: &Path) -> Result<(), BoxError> {
    let mut args = ffmpeg_base_args();
    let video = format!(
        "testsrc2=size={}x{}:rate={}:duration={}",
        spec.width, spec.height, spec.fps, spec.seconds
    );
    args.extend(["-f", "lavfi", "-i"].map(Into::into));
    args.push(video.into());
    if spec.with_audio {
        let audio = format!("sine=frequency=440:sample_rate=48000:duration={}", spec.seconds);
        args.extend(["-f", "lavfi", "-i"].map(Into::into));
        args.push(audio.into());
    }
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g"].map(Into::into));
    args.push((spec.fps * 2).to_string().into());
    if spec.with_audio {
        args.extend(["-c:a", "aac", "-b:a", "96k"].map(Into::into));
    }
    args.extend(["-movflags", "+faststart", "-f", "mp4"].map(Into::into));
    args.push(output.into());
    Supervised::new("ffmpeg", Deadline::after(making_allowance(spec)))
        .args(args)
        .run()
        .await?;
    Ok(())
}

/// How long making `spec` may take: two minutes, or more for a long or large sample at a slow
/// 20 million pixels a second (generated and encoded at `ultrafast`; the 10-minute 1080p source of
/// `make bench` took over two minutes on a busy 2-core machine). A guard against a hung ffmpeg,
/// not a measure.
fn making_allowance(spec: SampleSpec) -> Duration {
    let pixels = f64::from(spec.width) * f64::from(spec.height) * f64::from(spec.fps) * spec.seconds;
    Duration::from_secs_f64((pixels / 20e6).max(120.0))
}

/// A camera's recorder: `count` consecutive recordings of `seconds_each`, the first starting at
/// `start_ms`, cut from one continuous stream (so content runs on across recordings).
#[derive(Debug, Clone, Copy)]
pub struct Recorder {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub gop_seconds: u32,
    pub seconds_each: u32,
    pub count: u32,
    pub start_ms: i64,
    /// x264 preset of the recorder (`veryfast`; `ultrafast` makes long recordings quickly).
    pub preset: &'static str,
}

/// Makes the recordings with ffmpeg (H.264, AAC, faststart) as files `<name>-000.mp4`,
/// `<name>-001.mp4`, … in `work`, and returns their paths.
pub async fn make_recordings(recorder: Recorder, name: &str, work: &Path) -> Result<Vec<PathBuf>, BoxError> {
    std::fs::create_dir_all(work)?;
    let total = recorder.seconds_each * recorder.count;
    let gop = recorder.fps * recorder.gop_seconds;
    let pattern = work.join(format!("{name}-%03d.mp4"));
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={}x{}:rate={}",
            recorder.width, recorder.height, recorder.fps
        ))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t"])
        .arg(total.to_string())
        .args([
            "-c:v",
            "libx264",
            "-preset",
            recorder.preset,
            "-pix_fmt",
            "yuv420p",
            "-g",
        ])
        .arg(gop.to_string())
        .args(["-keyint_min"])
        .arg(gop.to_string())
        .args([
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "segment",
            "-segment_time",
        ])
        .arg(recorder.seconds_each.to_string())
        .args([
            "-reset_timestamps",
            "1",
            "-segment_format_options",
            "movflags=+faststart",
        ])
        .arg(&pattern)
        .status()
        .await?;
    if !status.success() {
        return Err(format!("ffmpeg could not make the recordings ({status})").into());
    }
    Ok((0..recorder.count)
        .map(|i| work.join(format!("{name}-{i:03}.mp4")))
        .collect())
}
