//! The ffmpeg side: probing a fetched source without letting its container reach out, and the
//! two-pass palette GIF (plus the one-pass GIF that `make bench` compares it with).
//!
//! A fetched file is hostile input to ffmpeg too: every read of it is fenced in by
//! [`shared::source_fence`] (real containers only, the local file protocol only), so that a
//! playlist "video" cannot make ffmpeg fetch what the fetcher refuses.

use std::ffi::OsString;
use std::path::Path;

use shared::ffmpeg::{ffmpeg_base_args, Deadline, Supervised};
use shared::gif::GifParams;
use shared::probe::{self, MediaInfo, Unreadable};
use shared::source_fence::source_fence;
use shared::{Code, ProcessingError};

fn source_input_args(source: &Path, params: &GifParams) -> Vec<OsString> {
    let mut args = source_fence(source.as_os_str());
    // Input seeking: fast, and exact since ffmpeg decodes from the previous keyframe.
    args.extend([
        "-ss".into(),
        format!("{:.3}", params.start_secs).into(),
        "-t".into(),
        format!("{:.3}", params.duration_secs).into(),
        "-i".into(),
        source.into(),
    ]);
    args
}

/// ffprobe on a fetched source; anything it cannot read under the whitelists is not a video.
pub async fn probe_source(ffprobe: &Path, source: &Path, deadline: Deadline) -> Result<MediaInfo, ProcessingError> {
    let unreadable = Unreadable {
        code: Code::NotVideo,
        says: "the source is not a video ffprobe can read",
    };
    let info = probe::probe_source(ffprobe, source, deadline, unreadable).await?;
    info.require_video()?;
    Ok(info)
}

/// The filters both passes share: frame rate, then width (never wider than the source).
pub fn scale_filter(params: &GifParams) -> String {
    format!("fps={},scale={}:-2:flags=lanczos", params.fps, params.width)
}

/// Pass 1: one palette of 256 colours built from the segment's own frames.
pub fn palette_args(source: &Path, params: &GifParams, palette: &Path) -> Vec<OsString> {
    let mut args = ffmpeg_base_args();
    args.extend(source_input_args(source, params));
    args.extend([
        "-vf".into(),
        format!("{},palettegen=stats_mode=diff", scale_filter(params)).into(),
        "-frames:v".into(),
        "1".into(),
        "-update".into(),
        "1".into(),
    ]);
    args.push(palette.into());
    args
}

/// Pass 2: the GIF, dithered against that palette; only changed rectangles re-dithered.
pub fn gif_args(source: &Path, params: &GifParams, palette: &Path, output: &Path) -> Vec<OsString> {
    let mut args = ffmpeg_base_args();
    args.extend(source_input_args(source, params));
    args.extend(["-i".into(), palette.into()]);
    args.extend([
        "-lavfi".into(),
        format!(
            "{}[frames];[frames][1:v]paletteuse=dither=sierra2_4a:diff_mode=rectangle",
            scale_filter(params)
        )
        .into(),
    ]);
    args.extend(gif_output_args(output));
    args
}

/// The one-pass GIF (ffmpeg's generic palette), for the benchmark's comparison only.
pub fn one_pass_gif_args(source: &Path, params: &GifParams, output: &Path) -> Vec<OsString> {
    let mut args = ffmpeg_base_args();
    args.extend(source_input_args(source, params));
    args.extend(["-vf".into(), scale_filter(params).into()]);
    args.extend(gif_output_args(output));
    args
}

/// The output options both GIF encodings end with: no audio, loop forever.
fn gif_output_args(output: &Path) -> [OsString; 6] {
    [
        "-an".into(),
        "-loop".into(),
        "0".into(),
        "-f".into(),
        "gif".into(),
        output.into(),
    ]
}

/// What the finished GIF is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GifInfo {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
}

/// Counts the GIF's frames (decoding them: the GIF container has no frame count).
pub async fn inspect_gif(ffprobe: &Path, gif: &Path, deadline: Deadline) -> Result<GifInfo, ProcessingError> {
    let output = Supervised::new(ffprobe, deadline)
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height,nb_read_frames", "-of", "json"])
        .arg(gif)
        .run()
        .await
        .map_err(|e| e.into_processing_error(Code::GifUnreadable))?;
    #[derive(serde::Deserialize)]
    struct Report {
        streams: Vec<Stream>,
    }
    #[derive(serde::Deserialize)]
    struct Stream {
        width: u32,
        height: u32,
        nb_read_frames: String,
    }
    let report: Report = serde_json::from_slice(&output.stdout)
        .map_err(|e| ProcessingError::failed(Code::GifUnreadable, format!("ffprobe's report on the GIF: {e}")))?;
    let stream = report
        .streams
        .first()
        .ok_or_else(|| ProcessingError::failed(Code::GifUnreadable, "the GIF has no video stream"))?;
    Ok(GifInfo {
        width: stream.width,
        height: stream.height,
        frames: stream.nb_read_frames.parse().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PARAMS: GifParams = GifParams {
        start_secs: 1.0,
        duration_secs: 2.0,
        width: 160,
        fps: 10,
    };

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn every_source_read_is_fenced_by_format_and_protocol_whitelists() {
        for args in [
            palette_args(Path::new("/w/source"), &PARAMS, Path::new("/w/p.png")),
            gif_args(
                Path::new("/w/source"),
                &PARAMS,
                Path::new("/w/p.png"),
                Path::new("/w/o.gif"),
            ),
            one_pass_gif_args(Path::new("/w/source"), &PARAMS, Path::new("/w/o.gif")),
        ] {
            let args = strings(&args);
            let source = args.iter().position(|a| a == "/w/source").unwrap();
            let before = &args[..source];
            assert!(
                before.windows(2).any(|w| w == ["-protocol_whitelist", "file"]),
                "{args:?}"
            );
            assert!(before
                .windows(2)
                .any(|w| w[0] == "-format_whitelist" && !w[1].contains("hls") && !w[1].contains("concat")));
            assert!(
                before.windows(2).any(|w| w == ["-ss", "1.000"]) && before.windows(2).any(|w| w == ["-t", "2.000"])
            );
        }
    }

    async fn sample(dir: &Path, name: &str, lavfi: &str, extra: &[&str]) -> std::path::PathBuf {
        let path = dir.join(name);
        Supervised::new("ffmpeg", Deadline::after(Duration::from_secs(60)))
            .args(ffmpeg_base_args())
            .args(["-f", "lavfi", "-i", lavfi])
            .args(extra)
            .arg(&path)
            .run()
            .await
            .unwrap();
        path
    }

    /// Real ffmpeg: the two passes make a GIF of the segment with the frame count and size asked.
    #[tokio::test]
    async fn two_passes_make_the_requested_segment_at_the_requested_size_and_rate() {
        let dir = tempfile::tempdir().unwrap();
        let deadline = Deadline::after(Duration::from_secs(60));
        let source = sample(
            dir.path(),
            "source",
            "testsrc2=size=320x240:rate=25:duration=4",
            &[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-f",
                "mp4",
            ],
        )
        .await;
        let info = probe_source(Path::new("ffprobe"), &source, deadline).await.unwrap();
        assert_eq!(info.video.unwrap().width, 320);
        let palette = dir.path().join("palette.png");
        let output = dir.path().join("out.gif");
        Supervised::new("ffmpeg", deadline)
            .args(palette_args(&source, &PARAMS, &palette))
            .run()
            .await
            .unwrap();
        Supervised::new("ffmpeg", deadline)
            .args(gif_args(&source, &PARAMS, &palette, &output))
            .run()
            .await
            .unwrap();
        let gif = inspect_gif(Path::new("ffprobe"), &output, deadline).await.unwrap();
        assert_eq!(
            gif,
            GifInfo {
                width: 160,
                height: 120,
                frames: 20
            }
        );
    }

    /// A playlist "video" that points elsewhere is refused before ffmpeg follows it.
    #[tokio::test]
    async fn playlists_and_non_videos_are_not_videos() {
        let dir = tempfile::tempdir().unwrap();
        let deadline = Deadline::after(Duration::from_secs(30));
        let playlist = dir.path().join("source");
        std::fs::write(
            &playlist,
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://169.254.169.254/latest/meta-data/\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        let err = probe_source(Path::new("ffprobe"), &playlist, deadline)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotVideo, "{err}");
        std::fs::write(&playlist, "just some text\n").unwrap();
        assert_eq!(
            probe_source(Path::new("ffprobe"), &playlist, deadline)
                .await
                .unwrap_err()
                .code(),
            Code::NotVideo
        );
        let audio = sample(dir.path(), "audio", "sine=duration=1", &["-f", "mp4"]).await;
        assert_eq!(
            probe_source(Path::new("ffprobe"), &audio, deadline)
                .await
                .unwrap_err()
                .code(),
            Code::NotVideo
        );
    }
}
