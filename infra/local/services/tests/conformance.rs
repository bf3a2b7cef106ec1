//! The local MediaConvert's conformance corpus: real-shaped jobs (`job-templates/mediaconvert/
//! conformance/*.json`, as the console exports them; a file with `Presets`, `JobTemplate` and
//! `Job` is a job by template and presets, merged as the service merges them) each planned by
//! the service's own planner
//! and rendered by the same ffmpeg arguments a job runs, on a short generated source; every
//! output is then checked with ffprobe against what its settings ask for (size, codec, profile,
//! level, GOP length, B-frames, bitrate under the HRD cap, HLS segment lengths, thumbnail count).
//!
//! No stack is needed: S3 is the only thing a job does that this skips (download of the input,
//! upload of the outputs), and the service tests those paths end to end in `infra/local/e2e`.
//! Run: `cargo test -p local-services --test conformance -- --nocapture`.

use std::path::{Path, PathBuf};
use std::process::Command;

use local_services::mediaconvert::settings::{self, GroupKind, GroupPlan, Source, VideoCodec, VideoPlan};
use local_services::mediaconvert::table::{class_of, Class};
use local_services::mediaconvert::templates;
use local_services::mediaconvert::video::Gop;
use serde_json::Value;

const SOURCE_SECONDS: f64 = 4.0;
const SOURCE_FPS: f64 = 25.0;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../job-templates/mediaconvert/conformance")
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?} (are ffmpeg and ffprobe installed?): {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A 640×360, 25 fps source with a stereo tone: small enough to encode in a blink.
fn make_source(dir: &Path) -> PathBuf {
    let path = dir.join("source.mp4");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=640x360:rate={SOURCE_FPS}:duration={SOURCE_SECONDS}"),
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=440:sample_rate=48000:duration={SOURCE_SECONDS}"),
            "-ac",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&path));
    path
}

fn probe(path: &Path) -> Value {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams", "-show_format"])
        .arg(path));
    serde_json::from_str(&out).expect("ffprobe JSON")
}

/// Distances in frames between the video's keyframes (the last GOP excluded: it is cut short).
/// Decoded, not read from packet flags: MPEG-TS marks only some keyframes as random access.
fn keyframe_gaps(path: &Path, stream: usize) -> Vec<usize> {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("v:{stream}")])
        .args(["-show_entries", "frame=key_frame", "-of", "csv=p=0"])
        .arg(path));
    // One line per frame (`1` or `0`, side data may add fields or blank lines).
    let keys: Vec<usize> = out
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .filter(|(_, line)| line.starts_with('1'))
        .map(|(i, _)| i)
        .collect();
    keys.windows(2).map(|w| w[1] - w[0]).collect()
}

fn video_stream(probed: &Value, index: usize) -> &Value {
    probed["streams"]
        .as_array()
        .and_then(|s| s.iter().filter(|s| s["codec_type"] == "video").nth(index))
        .expect("a video stream")
}

fn audio_stream(probed: &Value) -> Option<&Value> {
    probed["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "audio"))
}

/// The keyframe interval the plan asks for, in frames.
fn expected_keyint(video: &VideoPlan, source: &Source, segment_seconds: Option<u32>) -> Option<usize> {
    let fps = video.output_fps(source);
    let keyint = match video.tuning.gop {
        Gop::Auto => None,
        Gop::Frames(frames) => Some(frames as usize),
        Gop::Millis(ms) => Some((ms as f64 / 1000.0 * fps).round() as usize),
    };
    let segment = segment_seconds.map(|s| (s as f64 * fps).round() as usize);
    match (keyint, segment) {
        (Some(k), Some(s)) => Some(k.min(s)),
        (k, s) => k.or(s),
    }
}

struct Tally {
    outputs: usize,
}

/// Checks one rendered video (an MP4, or an HLS variant playlist) against its plan.
fn check_video(
    file: &Path,
    index: usize,
    video: &VideoPlan,
    source: &Source,
    segment_seconds: Option<u32>,
    clip_seconds: f64,
) {
    let name = format!("{} (video {index})", file.display());
    let probed = probe(file);
    let stream = video_stream(&probed, index);
    let (width, height) = video.output_size(source);
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(width as u64), Some(height as u64)),
        "{name}: size"
    );
    let codec = match video.codec {
        VideoCodec::H264 => "h264",
        VideoCodec::H265 => "hevc",
        VideoCodec::Av1 => "av1",
        VideoCodec::FrameCapture => "mjpeg",
    };
    assert_eq!(stream["codec_name"], codec, "{name}: codec");
    if let Some(profile) = video.tuning.profile {
        let probed_profile = stream["profile"].as_str().unwrap_or("").to_lowercase();
        let expected = match profile {
            "baseline" => "constrained baseline",
            "high10" => "high 10",
            "main10" => "main 10",
            other => other,
        };
        assert_eq!(probed_profile, expected, "{name}: profile");
    }
    if let Some(level) = &video.tuning.level {
        let number: f64 = level.parse().unwrap();
        let expected = match video.codec {
            VideoCodec::H265 => (number * 30.0).round() as i64,
            _ => (number * 10.0).round() as i64,
        };
        assert_eq!(stream["level"].as_i64(), Some(expected), "{name}: level");
    }
    if let Some(b_frames) = video.tuning.b_frames {
        let reorder = stream["has_b_frames"].as_u64().unwrap_or(0);
        assert_eq!(reorder > 0, b_frames > 0, "{name}: B-frames (has_b_frames {reorder})");
    }
    if let Some(keyint) = expected_keyint(video, source, segment_seconds) {
        let gaps = keyframe_gaps(file, index);
        assert!(!gaps.is_empty(), "{name}: one keyframe only");
        assert!(
            gaps.iter().all(|g| *g <= keyint),
            "{name}: a GOP longer than {keyint} frames: {gaps:?}"
        );
        if !video.scene_change_detect || video.codec == VideoCodec::H265 || segment_seconds.is_some() {
            assert_eq!(
                gaps[0], keyint,
                "{name}: the first GOP is {} frames, not {keyint}",
                gaps[0]
            );
        }
    }
    let cap = match video.rate {
        settings::RateControl::Qvbr { max_bitrate, .. } => max_bitrate,
        settings::RateControl::Cbr { bitrate } => Some(bitrate),
        settings::RateControl::Vbr { max_bitrate, .. } => max_bitrate,
    };
    let duration: f64 = probed["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    if let (Some(cap), Some(size)) = (
        cap,
        probed["format"]["size"].as_str().and_then(|s| s.parse::<f64>().ok()),
    ) {
        let rate = size * 8.0 / duration.max(0.1);
        // The file's whole rate (audio and container included) under the cap plus one buffer.
        let buffer = video.tuning.hrd_buffer.unwrap_or(cap * 2) as f64;
        assert!(
            rate <= cap as f64 + 160_000.0 + buffer / duration.max(0.1),
            "{name}: {rate:.0} bit/s over the cap {cap}"
        );
    }
    assert!(
        (duration - clip_seconds).abs() < 0.3,
        "{name}: lasts {duration:.2} s, not {clip_seconds:.2} s"
    );
}

fn check_hls_playlists(dir: &Path, base: &str, group: &GroupPlan, segment: u32) {
    let master = std::fs::read_to_string(dir.join(format!("{base}.m3u8"))).expect("the master playlist");
    for output in &group.outputs {
        let variant = format!("{base}{}.m3u8", output.name_modifier);
        assert!(master.contains(&variant), "the master playlist names {variant}");
        let playlist = std::fs::read_to_string(dir.join(&variant)).expect("a variant playlist");
        let lengths: Vec<f64> = playlist
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .filter_map(|l| l.trim_end_matches(',').split(',').next()?.parse().ok())
            .collect();
        assert!(!lengths.is_empty(), "{variant}: no segments");
        assert!(
            lengths.iter().all(|l| *l <= segment as f64 + 0.05),
            "{variant}: a segment longer than {segment} s: {lengths:?}"
        );
        assert!(
            lengths[..lengths.len() - 1]
                .iter()
                .all(|l| (*l - segment as f64).abs() < 0.05),
            "{variant}: segments are not {segment} s: {lengths:?}"
        );
    }
    assert!(master.contains("RESOLUTION="), "StreamInfResolution INCLUDE");
    // The transport stream: program and PIDs as M3u8Settings asked.
    let first_segment = dir.join(format!("{base}{}_00001.ts", group.outputs[0].name_modifier));
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_programs"])
        .arg(&first_segment));
    let programs: Value = serde_json::from_str(&out).unwrap();
    let program = &programs["programs"][0];
    let ts = group.ts;
    if let Some(pmt) = ts.pmt_pid {
        assert_eq!(program["pmt_pid"].as_u64(), Some(pmt as u64), "PmtPid");
    }
    if let Some(number) = ts.program_number {
        assert_eq!(program["program_num"].as_u64(), Some(number as u64), "ProgramNumber");
    }
    if let Some(video_pid) = ts.video_pid {
        let pids: Vec<(String, String)> = program["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["codec_type"].as_str().unwrap_or("").to_owned(),
                    s["id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert!(
            pids.contains(&("video".into(), format!("0x{video_pid:x}"))),
            "VideoPid {video_pid}: {pids:?}"
        );
        if group.outputs[0].audio.is_some() {
            assert!(
                pids.contains(&("audio".into(), format!("0x{:x}", video_pid + 1))),
                "AudioPids: {pids:?}"
            );
        }
    }
}

/// The MPD: a representation per video and audio output, with the asked sizes, and segments
/// of the asked length (from the SegmentTimeline, or the template's fixed duration).
fn check_mpd(mpd: &Path, group: &GroupPlan, segment: u32, single_file: bool) {
    let text = std::fs::read_to_string(mpd).expect("the MPD");
    let representations = text.matches("<Representation ").count();
    let expected = group.outputs.iter().filter(|o| o.video.is_some()).count()
        + group.outputs.iter().filter(|o| o.audio.is_some()).count();
    assert_eq!(representations, expected, "{}: representations", mpd.display());
    let attribute = |element: &str, name: &str| -> Option<f64> {
        let start = element.find(&format!("{name}=\""))? + name.len() + 2;
        element[start..].split('"').next()?.parse().ok()
    };
    if single_file {
        assert!(
            text.contains("<BaseURL>"),
            "{}: single files are addressed by BaseURL",
            mpd.display()
        );
        return;
    }
    for template in text.split("<SegmentTemplate ").skip(1) {
        let timescale = attribute(template, "timescale").unwrap_or(1.0);
        let body = template.split("</SegmentTemplate>").next().unwrap_or("");
        let mut lengths = Vec::new();
        for entry in body.split("<S ").skip(1) {
            let d = attribute(entry, "d").expect("S@d") / timescale;
            let repeats = attribute(entry, "r").unwrap_or(0.0) as usize;
            lengths.extend(std::iter::repeat_n(d, repeats + 1));
        }
        if lengths.is_empty() {
            lengths.push(attribute(template, "duration").expect("SegmentTemplate@duration") / timescale);
        }
        assert!(
            lengths.iter().all(|l| *l <= segment as f64 + 0.05),
            "{}: a segment longer than {segment} s: {lengths:?}",
            mpd.display()
        );
        assert!(
            lengths[..lengths.len() - 1]
                .iter()
                .all(|l| (*l - segment as f64).abs() < 0.05),
            "{}: segments are not {segment} s: {lengths:?}",
            mpd.display()
        );
    }
}

/// CMAF's HLS playlists over the same segments.
fn check_cmaf_hls(dir: &Path, base: &str, segment: u32) {
    let master = std::fs::read_to_string(dir.join(format!("{base}.m3u8"))).expect("the CMAF master playlist");
    let media: Vec<&str> = master
        .lines()
        .filter(|l| l.ends_with(".m3u8") && !l.starts_with('#'))
        .collect();
    let audio_groups = master.matches("TYPE=AUDIO").count();
    assert!(!media.is_empty() || audio_groups > 0, "no media playlists in {master}");
    for line in master.lines() {
        if let Some(uri) = line.split("URI=\"").nth(1).and_then(|rest| rest.split('"').next()) {
            assert!(dir.join(uri).exists(), "{uri} is missing");
        }
    }
    for playlist in media {
        let text = std::fs::read_to_string(dir.join(playlist)).expect("a media playlist");
        assert!(
            text.contains("#EXT-X-MAP"),
            "{playlist}: fragmented MP4 needs its init segment"
        );
        for length in text.lines().filter_map(|l| l.strip_prefix("#EXTINF:")) {
            let length: f64 = length.trim_end_matches(',').split(',').next().unwrap().parse().unwrap();
            assert!(length <= segment as f64 + 0.05, "{playlist}: a {length} s segment");
        }
    }
}

fn run_job(path: &Path, source_file: &Path, source: &Source, work: &Path, tally: &mut Tally) -> (usize, usize) {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let console: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut job = match console.get("JobTemplate") {
        // A job by template and presets: {"Presets": [...], "JobTemplate": {...}, "Job": {...}}.
        Some(template) if template.is_object() => {
            let presets: Vec<Value> = console["Presets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(settings::console_to_wire)
                .collect();
            let template = settings::console_to_wire(template);
            let mut job = templates::apply_template(&settings::console_to_wire(&console["Job"]), &template);
            templates::apply_presets(&mut job, |name| {
                presets
                    .iter()
                    .find(|p| p["name"] == name)
                    .map(|p| p["settings"].clone())
            })
            .unwrap_or_else(|e| panic!("{name}: {}", e.0));
            job
        }
        _ => settings::console_to_wire(&console),
    };
    job["settings"]["inputs"][0]["fileInput"] = "s3://conformance/source.mp4".into();
    let plan = settings::plan(&job).unwrap_or_else(|refused| panic!("{name}: refused: {refused}"));
    let honoured = settings::leaf_settings(&job)
        .iter()
        .filter(|(_, pattern)| class_of(pattern) == Some(Class::Honoured))
        .count();
    for (index, group) in plan.groups.iter().enumerate() {
        let dir = work.join(&name).join(format!("group-{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        let base = group.base_name(&plan.input_key);
        let (args, files) = group.ffmpeg_args(source_file, source, &dir, &base);
        run(Command::new("ffmpeg").args(&args));
        let clip_seconds = match group.clipping {
            Some(clip) => {
                let end = clip.end.map_or(SOURCE_SECONDS, |e| e.seconds_at(source.fps));
                end - clip.start.map_or(0.0, |s| s.seconds_at(source.fps))
            }
            None => SOURCE_SECONDS,
        };
        let segment = match &group.kind {
            GroupKind::Hls { segment_length, .. } => {
                check_hls_playlists(&dir, &base, group, *segment_length);
                Some(*segment_length)
            }
            GroupKind::Dash(dash) => {
                check_mpd(
                    &dir.join(format!("{base}.mpd")),
                    group,
                    dash.segment_length,
                    dash.single_file,
                );
                if dash.write_hls {
                    check_cmaf_hls(&dir, &base, dash.segment_length);
                }
                Some(dash.segment_length)
            }
            GroupKind::File => None,
        };
        let mut video_index = 0;
        for file in files.iter() {
            let Some(output_index) = file.output else { continue };
            let output = &group.outputs[output_index];
            tally.outputs += 1;
            let Some(video) = output.video.as_ref() else {
                // An audio-only DASH/CMAF output: checked in the manifest.
                continue;
            };
            if let Some(captures) = video.captures {
                let mut stills: Vec<String> = std::fs::read_dir(&dir)
                    .unwrap()
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.starts_with(&file.name) && n.ends_with(".jpg"))
                    .collect();
                stills.sort();
                let by_rate =
                    (clip_seconds * captures.framerate.0 as f64 / captures.framerate.1 as f64).ceil() as usize;
                let expected = captures.max_captures.map_or(by_rate, |m| by_rate.min(m as usize));
                assert_eq!(stills.len(), expected, "{name}: thumbnails {stills:?}");
                assert_eq!(
                    stills[0],
                    format!("{}0000000.jpg", file.name),
                    "{name}: MediaConvert's numbering"
                );
                let still = video_stream(&probe(&dir.join(&stills[0])), 0).clone();
                let (w, h) = video.output_size(source);
                assert_eq!(
                    (still["width"].as_u64(), still["height"].as_u64()),
                    (Some(w as u64), Some(h as u64))
                );
                continue;
            }
            let rendered = dir.join(&file.name);
            // One MPD holds every representation; other files hold one video each.
            let index = if matches!(group.kind, GroupKind::Dash(_)) {
                video_index
            } else {
                0
            };
            video_index += 1;
            check_video(&rendered, index, video, source, segment, clip_seconds);
            if matches!(group.kind, GroupKind::Dash(_)) {
                continue;
            }
            if let Some(audio) = &output.audio {
                let probed = probe(&rendered);
                let stream = audio_stream(&probed).unwrap_or_else(|| panic!("{}: no audio", rendered.display()));
                assert_eq!(stream["codec_name"], "aac");
                assert_eq!(stream["channels"].as_u64(), Some(audio.channels as u64));
                assert_eq!(
                    stream["sample_rate"].as_str(),
                    Some(audio.sample_rate.to_string().as_str())
                );
            }
        }
    }
    (honoured, plan.accepted.len())
}

#[test]
fn local_mediaconvert_conformance() {
    let work = tempfile::tempdir().unwrap();
    let source_file = make_source(work.path());
    let source = Source {
        width: 640,
        height: 360,
        has_audio: true,
        fps: SOURCE_FPS,
    };
    let mut jobs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the conformance corpus")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    jobs.sort();
    assert!(jobs.len() >= 2, "the corpus is missing: {jobs:?}");
    let mut tally = Tally { outputs: 0 };
    let (mut honoured, mut accepted) = (0, 0);
    for job in &jobs {
        let (h, a) = run_job(job, &source_file, &source, work.path(), &mut tally);
        honoured += h;
        accepted += a;
    }
    println!(
        "local MediaConvert conformance: {} jobs, {} outputs, {honoured} settings honoured, {accepted} accepted without effect, 0 refused",
        jobs.len(),
        tally.outputs
    );
}
