//! Smart cut and full re-encode on real recordings made with ffmpeg, without AWS (so these run
//! in a plain `cargo test`): frame counts, the first frame against the source, and a clean
//! decode across the joins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clip_trimmer::cut::{plan_segment, Cutter, Mode, Part};
use clip_trimmer::media::{probe_index, MediaIndex};
use media_fixtures::checks::{count_frames, decode_errors, first_frame_offset};
use media_fixtures::{make_recordings, Recorder};
use shared::ffmpeg::Deadline;

/// A continuous 30 s, 25 fps camera stream (2 s GOP, B-frames, AAC) cut into three 10 s
/// recordings, as a camera's recorder does.
async fn recordings(dir: &Path) -> Vec<PathBuf> {
    let recorder = Recorder {
        width: 640,
        height: 360,
        fps: 25,
        gop_seconds: 2,
        seconds_each: 10,
        count: 3,
        start_ms: 0,
        preset: "veryfast",
    };
    make_recordings(recorder, "rec", dir).await.unwrap()
}

async fn indexes(files: &[PathBuf]) -> Vec<MediaIndex> {
    let mut out = Vec::new();
    for file in files {
        out.push(
            probe_index(
                Path::new("ffprobe"),
                file,
                Deadline::after(Duration::from_secs(60)),
                None,
            )
            .await
            .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn a_smart_cut_across_three_recordings_is_frame_exact_and_decodes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let files = recordings(dir.path()).await;
    let idx = indexes(&files).await;
    // From 3.32 s into the first recording (mid-GOP) to 6.52 s into the third.
    let ranges = [(3.32, 10.0), (0.0, 10.0), (0.0, 6.52)];
    let parts: Vec<Part> = ranges
        .iter()
        .zip(&idx)
        .zip(&files)
        .map(|(((from, to), index), file)| Part {
            file,
            index,
            plan: plan_segment(index, *from, *to).unwrap(),
        })
        .collect();
    let expected_frames: u32 = parts.iter().map(|p| p.plan.frames).sum();
    assert_eq!(expected_frames, 167 + 250 + 163);
    let cutter = Cutter {
        ffmpeg: Path::new("ffmpeg"),
        work_dir: dir.path(),
        deadline: Deadline::after(Duration::from_secs(120)),
    };
    let clip = dir.path().join("clip.mp4");
    let cut = cutter.cut(&parts, Mode::SmartCut, &clip).await.unwrap();
    assert!(cut.frames_copied >= 400, "most frames are copied: {cut:?}");
    assert_eq!(count_frames(&clip), expected_frames);
    assert_eq!(decode_errors(&clip), "");
    // The first frame: 3.32 s into the first recording (relative to its video start).
    let start = idx[0].start_time - idx[0].format_start_time;
    assert_eq!(first_frame_offset(&clip, &files[0], 3.32 + start, 0.04), 0);
}

#[tokio::test]
async fn a_full_re_encode_gives_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let files = recordings(dir.path()).await;
    let idx = indexes(&files[..2]).await;
    let parts = vec![
        Part {
            file: &files[0],
            index: &idx[0],
            plan: plan_segment(&idx[0], 8.0, 10.0).unwrap(),
        },
        Part {
            file: &files[1],
            index: &idx[1],
            plan: plan_segment(&idx[1], 0.0, 1.0).unwrap(),
        },
    ];
    let cutter = Cutter {
        ffmpeg: Path::new("ffmpeg"),
        work_dir: dir.path(),
        deadline: Deadline::after(Duration::from_secs(120)),
    };
    let clip = dir.path().join("clip.mp4");
    let mode = Mode::ReEncode { reason: "test".into() };
    cutter.cut(&parts, mode, &clip).await.unwrap();
    assert_eq!(count_frames(&clip), 75);
    assert_eq!(decode_errors(&clip), "");
}

/// A "recording" that is an HLS playlist naming a real recording is refused by name, not
/// followed: the camera's files are read fenced in (`shared::source_fence`).
#[tokio::test]
async fn a_recording_that_is_a_playlist_naming_another_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = recordings(dir.path()).await;
    let real = dir.path().join("real.ts");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&files[0])
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(&real)
        .status()
        .unwrap();
    assert!(status.success());
    let playlist = dir.path().join("rec-999.mp4");
    std::fs::write(
        &playlist,
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{}\n#EXT-X-ENDLIST\n",
            real.display()
        ),
    )
    .unwrap();
    // Unfenced, ffprobe follows it (what the fence is for).
    let unfenced = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0"])
        .arg(&playlist)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unfenced.stdout).contains("video"));

    let refused = probe_index(
        Path::new("ffprobe"),
        &playlist,
        Deadline::after(Duration::from_secs(60)),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), shared::Code::RecordingCorrupt, "{refused}");
}
