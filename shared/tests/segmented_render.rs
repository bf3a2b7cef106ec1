//! Segmented rendering against the single pass, with real ffmpeg and no AWS (a plain
//! `cargo test`): the segments are encoded one by one as the segment function would, appended,
//! joined with the audio encoded once, and the result is compared with the single-pass encode of
//! the same profile frame by frame.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use shared::probe::MediaInfo;
use shared::profiles::RenditionProfile;
use shared::segments::{
    audio_args, join_args, segment_command, FrameRate, SegmentPlan, DEFAULT_LEAD_IN_SECS, DEFAULT_LEAD_OUT_SECS,
};

fn ffmpeg(args: &[OsString]) {
    let out = Command::new("ffmpeg").args(args).output().expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ffprobe_lines(file: &Path, stream: &str, entries: &str) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            entries,
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches(',').to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Presentation times of the decoded frames of `stream`, in order.
fn frame_times(file: &Path, stream: &str) -> Vec<f64> {
    ffprobe_lines(file, stream, "frame=pts_time")
        .iter()
        .map(|t| t.parse().unwrap())
        .collect()
}

/// Presentation times of the video's keyframes.
fn keyframe_times(file: &Path) -> Vec<f64> {
    let mut times: Vec<f64> = ffprobe_lines(file, "v:0", "packet=pts_time,flags")
        .iter()
        .filter_map(|line| line.split_once(','))
        .filter(|(_, flags)| flags.starts_with('K'))
        .map(|(pts, _)| pts.parse().unwrap())
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

fn stream_end(file: &Path, stream: &str) -> f64 {
    let times = ffprobe_lines(file, stream, "packet=pts_time,duration_time");
    times
        .iter()
        .map(|line| {
            let (pts, duration) = line.split_once(',').unwrap();
            pts.parse::<f64>().unwrap() + duration.parse::<f64>().unwrap_or(0.0)
        })
        .fold(0.0, f64::max)
}

/// Per-frame PSNR (average of the planes) of `a` against `b`, frames matched by timestamp.
fn psnr_per_frame(a: &Path, b: &Path, work: &Path) -> Vec<f64> {
    let stats = work.join("psnr.log");
    let filter = format!("[0:v][1:v]psnr=stats_file={}", stats.display());
    let args: Vec<OsString> = ["-v", "error", "-i"]
        .map(OsString::from)
        .into_iter()
        .chain([a.as_os_str().to_owned(), "-i".into(), b.as_os_str().to_owned()])
        .chain(["-lavfi", &filter, "-f", "null", "-"].map(OsString::from))
        .collect();
    ffmpeg(&args);
    std::fs::read_to_string(stats)
        .unwrap()
        .lines()
        .map(|line| {
            let value = line
                .split_whitespace()
                .find_map(|f| f.strip_prefix("psnr_avg:"))
                .unwrap();
            if value == "inf" {
                100.0
            } else {
                value.parse().unwrap()
            }
        })
        .collect()
}

fn probe(file: &Path) -> MediaInfo {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
        .arg(file)
        .output()
        .unwrap();
    shared::probe::parse_ffprobe_json(&out.stdout).unwrap()
}

/// Renders `source` under `profile` both ways and checks that the joined file is the single
/// pass's, frame for frame. Returns the segment count.
fn segmented_equals_single_pass(source: &Path, work: &Path, segment_secs: f64) -> usize {
    let profile = RenditionProfile::built_in("720p").unwrap();
    let info = probe(source);
    let plan = profile.plan(&info).unwrap();
    let video = info.video.as_ref().unwrap();
    let rate = FrameRate::from_fps(plan.fps_cap.unwrap_or(video.fps.unwrap())).unwrap();
    let segments = SegmentPlan::new(
        info.duration_secs.unwrap(),
        rate,
        profile.video.keyframe_interval_secs,
        segment_secs,
        DEFAULT_LEAD_IN_SECS,
        DEFAULT_LEAD_OUT_SECS,
    );
    assert!(
        segments.segments[1..].iter().all(|s| s.lead_in_frames > 0)
            && segments.segments[..segments.segments.len() - 1]
                .iter()
                .all(|s| s.lead_out_frames > 0),
        "every join is made between a lead-out and a lead-in"
    );

    let single = work.join("single.mp4");
    ffmpeg(&profile.ffmpeg_args(&plan, source, &single));

    let appended = work.join("video.ts");
    let mut bytes = Vec::new();
    for segment in &segments.segments {
        let dir = work.join(format!("segment-{}", segment.index));
        std::fs::create_dir_all(&dir).unwrap();
        let command = segment_command(&profile, &plan, rate, segment, source.as_os_str(), &dir);
        ffmpeg(&command.args);
        bytes.extend(std::fs::read(&command.output).unwrap());
    }
    std::fs::write(&appended, bytes).unwrap();
    let audio = work.join("audio.m4a");
    ffmpeg(&audio_args(&profile, source.as_os_str(), &audio));
    let joined = work.join("joined.mp4");
    ffmpeg(&join_args(&profile, &appended, Some(&audio), &joined));

    // The same frames at the same times.
    let (single_times, joined_times) = (frame_times(&single, "v:0"), frame_times(&joined, "v:0"));
    assert_eq!(joined_times.len(), single_times.len(), "frame count");
    let frame = rate.seconds_at(1);
    for (n, (j, s)) in joined_times.iter().zip(&single_times).enumerate() {
        assert!(
            (j - s).abs() < frame / 4.0,
            "frame {n}: joined at {j}, single pass at {s}"
        );
    }
    // The keyframes are the single pass's: at every join and on its grid inside the segments.
    let (single_keys, joined_keys) = (keyframe_times(&single), keyframe_times(&joined));
    assert!(single_keys.len() > segments.segments.len(), "{single_keys:?}");
    assert_eq!(
        joined_keys.len(),
        single_keys.len(),
        "keyframes: joined {joined_keys:?}, single pass {single_keys:?}"
    );
    for (j, s) in joined_keys.iter().zip(&single_keys) {
        assert!(
            (j - s).abs() < frame / 4.0,
            "keyframes: joined {joined_keys:?}, single pass {single_keys:?}"
        );
    }
    // Each frame is the single pass's picture: a frame shifted by one at a join scores far lower.
    let psnr = psnr_per_frame(&joined, &single, work);
    assert_eq!(psnr.len(), single_times.len());
    let (worst_frame, worst) = psnr
        .iter()
        .enumerate()
        .fold((0, f64::MAX), |acc, (n, p)| if *p < acc.1 { (n, *p) } else { acc });
    assert!(
        worst > 30.0,
        "frame {worst_frame} is {worst:.1} dB from the single pass's"
    );
    // The audio is the single pass's, and ends with the video as the single pass's does.
    let audio_end = |f: &Path| stream_end(f, "a:0");
    let video_end = |f: &Path| stream_end(f, "v:0");
    assert!((video_end(&joined) - video_end(&single)).abs() < frame / 4.0);
    assert!((audio_end(&joined) - audio_end(&single)).abs() < 0.001);
    let one_audio_frame = 1024.0 / profile.audio.sample_rate as f64;
    let offset_joined = (audio_end(&joined) - video_end(&joined)).abs();
    let offset_single = (audio_end(&single) - video_end(&single)).abs();
    assert!(
        offset_joined <= offset_single + one_audio_frame,
        "A/V end offset {offset_joined:.4} s against the single pass's {offset_single:.4} s"
    );
    segments.segments.len()
}

fn lavfi_source(path: &Path, rate: &str, seconds: u32) {
    let video = format!("testsrc2=size=320x180:rate={rate}");
    let args: Vec<OsString> = [
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        &video,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        &seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "250",
        "-c:a",
        "aac",
    ]
    .map(OsString::from)
    .into_iter()
    .chain([path.as_os_str().to_owned()])
    .collect();
    ffmpeg(&args);
}

#[test]
fn a_capped_59_94_fps_source_joins_into_the_single_pass_frames() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.mp4");
    lavfi_source(&source, "60000/1001", 13);
    assert_eq!(segmented_equals_single_pass(&source, dir.path(), 4.0), 3);
}

#[test]
fn an_ntsc_source_kept_at_its_rate_joins_into_the_single_pass_frames() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.mp4");
    // 330 frames: keyframe intervals start at frames 0, 60, 120, … (2 s at 29.97 fps).
    lavfi_source(&source, "30000/1001", 11);
    assert_eq!(segmented_equals_single_pass(&source, dir.path(), 4.0), 3);
}
