//! Segmented rendering against the single pass, with real ffmpeg and no AWS (a plain
//! `cargo test`): the video and audio segments are encoded one by one as the segment function
//! would, appended, joined, and the result is compared with the single-pass encode of the same
//! profile frame by frame and sample by sample.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use shared::probe::MediaInfo;
use shared::profiles::RenditionProfile;
use shared::segments::{
    audio_segment_args, audio_segments, join_args, keep_audio_frames, segment_command, FrameRate, SegmentPlan,
    AAC_FRAME_SAMPLES, DEFAULT_LEAD_IN_SECS, DEFAULT_LEAD_OUT_SECS,
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

/// The first audio stream decoded to 16-bit mono samples at the stream's own rate.
fn pcm(file: &Path) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-ac", "1", "-f", "s16le", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// How far `other` is from `reference` over a stretch, as signal-to-noise in dB.
fn snr_db(reference: &[i16], other: &[i16]) -> f64 {
    let square = |v: f64| v * v;
    let signal: f64 = reference.iter().map(|&r| square(f64::from(r))).sum();
    let noise: f64 = reference
        .iter()
        .zip(other)
        .map(|(&r, &o)| square(f64::from(r) - f64::from(o)))
        .sum();
    10.0 * (signal.max(1.0) / noise.max(1.0)).log10()
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
/// pass's, frame for frame and sample for sample. Returns the video and audio segment counts.
fn segmented_equals_single_pass(source: &Path, work: &Path, segment_secs: f64) -> (usize, usize) {
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
    let audio_segments = audio_segments(
        &profile,
        info.audio.as_ref().unwrap(),
        segment_secs,
        DEFAULT_LEAD_IN_SECS,
        DEFAULT_LEAD_OUT_SECS,
    )
    .expect("an MP4's AAC is cut to the sample");
    let mut frames = Vec::new();
    for segment in &audio_segments {
        let encoded = work.join(format!("audio-{}.aac", segment.index));
        ffmpeg(&audio_segment_args(&profile, segment, source.as_os_str(), &encoded));
        frames.extend(keep_audio_frames(&std::fs::read(&encoded).unwrap(), segment).unwrap());
    }
    let audio = work.join("audio.aac");
    std::fs::write(&audio, frames).unwrap();
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
    // The single pass's last AAC frame is marked as only partly sound; ADTS, which the audio
    // segments are joined in, cannot say so, and the joined audio's last frame counts whole.
    let one_audio_frame = 1024.0 / profile.audio.sample_rate as f64;
    let (joined_audio_end, single_audio_end) = (audio_end(&joined), audio_end(&single));
    assert!(
        joined_audio_end > single_audio_end - 0.001 && joined_audio_end < single_audio_end + one_audio_frame,
        "audio ends at {joined_audio_end} s, in the single pass at {single_audio_end} s"
    );
    let offset_joined = (audio_end(&joined) - video_end(&joined)).abs();
    let offset_single = (audio_end(&single) - video_end(&single)).abs();
    assert!(
        offset_joined <= offset_single + one_audio_frame,
        "A/V end offset {offset_joined:.4} s against the single pass's {offset_single:.4} s"
    );
    // Every sample, none doubled or lost at an audio join: the joined audio decodes to as many
    // samples as the single pass's, and around each join it is the single pass's sound (a
    // stretch shifted by one sample of the 440 Hz tone scores about 25 dB; the encodes agree to
    // about 60 dB and more).
    let (single_pcm, joined_pcm) = (pcm(&single), pcm(&joined));
    assert_eq!(joined_pcm.len(), single_pcm.len(), "audio samples");
    let block = AAC_FRAME_SAMPLES as usize;
    for segment in &audio_segments[1..] {
        let join = segment.first_frame as usize * block;
        let (from, to) = (join - 2 * block, (join + 2 * block).min(single_pcm.len()));
        let snr = snr_db(&single_pcm[from..to], &joined_pcm[from..to]);
        assert!(
            snr > 40.0,
            "the audio around the join at sample {join} is {snr:.1} dB from the single pass's"
        );
    }
    (segments.segments.len(), audio_segments.len())
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
    assert_eq!(segmented_equals_single_pass(&source, dir.path(), 4.0), (3, 3));
}

#[test]
fn an_ntsc_source_kept_at_its_rate_joins_into_the_single_pass_frames() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.mp4");
    // 330 frames: keyframe intervals start at frames 0, 60, 120, … (2 s at 29.97 fps).
    lavfi_source(&source, "30000/1001", 11);
    assert_eq!(segmented_equals_single_pass(&source, dir.path(), 4.0), (3, 3));
}
