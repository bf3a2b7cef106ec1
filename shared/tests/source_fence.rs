//! The source fence against real ffprobe and ffmpeg (a plain `cargo test`): a playlist saved as
//! `.mp4` that names another file is read by them unfenced, and refused fenced, while a real
//! video is read either way.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shared::ffmpeg::Deadline;
use shared::probe::{probe_file, probe_source, Unreadable};
use shared::source_fence::source_fence;
use shared::Code;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A one-second video (MPEG-TS, as an HLS segment is) and a playlist `upload.mp4` naming it.
fn video_and_playlist(dir: &Path) -> (PathBuf, PathBuf) {
    let video = dir.join("elsewhere.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=10:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-f",
        "mpegts",
        video.to_str().unwrap(),
    ]);
    let playlist = dir.join("upload.mp4");
    std::fs::write(
        &playlist,
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{}\n#EXT-X-ENDLIST\n",
            video.display()
        ),
    )
    .unwrap();
    (video, playlist)
}

fn unreadable() -> Unreadable {
    Unreadable::CORRUPT_FILE
}

#[tokio::test]
async fn a_playlist_named_mp4_is_read_unfenced_and_refused_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let (video, playlist) = video_and_playlist(dir.path());
    let deadline = || Deadline::after(Duration::from_secs(60));

    // Unfenced, ffprobe follows the playlist to the other file: the danger is real here.
    let followed = probe_file(Path::new("ffprobe"), &playlist, deadline()).await.unwrap();
    assert!(followed.video.is_some(), "{followed:?}");

    let refused = probe_source(Path::new("ffprobe"), &playlist, deadline(), unreadable())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::CorruptInput, "{refused}");

    // ffmpeg under the same fence reads nothing through it either.
    let mut args: Vec<OsString> = ["-nostdin", "-v", "error"].map(OsString::from).to_vec();
    args.extend(source_fence(playlist.as_os_str()));
    args.extend([
        "-i".into(),
        playlist.clone().into_os_string(),
        "-f".into(),
        "null".into(),
        "-".into(),
    ]);
    let fenced = Command::new("ffmpeg").args(&args).output().unwrap();
    assert!(!fenced.status.success(), "ffmpeg read the playlist under the fence");

    // A real video is read fenced.
    let info = probe_source(Path::new("ffprobe"), &video, deadline(), unreadable())
        .await
        .unwrap();
    assert!(info.video.is_some());
}
