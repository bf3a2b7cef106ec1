//! Checks of produced media with ffmpeg/ffprobe, shared by the tests and the benchmarks.

use std::path::Path;
use std::process::Command;

/// What ffprobe prints of the first video stream of `file` for `options`.
fn probe_video_stream(file: &Path, options: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(options)
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Video frames in `file`, counted by decoding.
pub fn count_frames(file: &Path) -> u32 {
    let options = [
        "-count_frames",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
    ];
    probe_video_stream(file, &options).parse().unwrap_or(0)
}

/// Whatever ffmpeg complains about while decoding all of `file` (empty: it decodes cleanly).
pub fn decode_errors(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// PSNR (dB) between the first frame of `clip` and the frame shown `seconds` into `source`.
pub fn first_frame_psnr(clip: &Path, source: &Path, seconds: f64) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "info", "-nostats", "-i"])
        .arg(clip)
        .args(["-ss", &format!("{seconds:.4}"), "-i"])
        .arg(source)
        .args([
            "-lavfi",
            "[0:v]trim=end_frame=1,setpts=PTS-STARTPTS[a];[1:v]trim=end_frame=1,setpts=PTS-STARTPTS[b];[a][b]psnr",
        ])
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let average = text
        .split("average:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PSNR in ffmpeg's output: {text}"));
    if average == "inf" {
        f64::INFINITY
    } else {
        average.parse().expect("PSNR is a number")
    }
}

/// Which of the frames at `seconds` + k × `frame` (k = -2..=2) in `source` the first frame of
/// `clip` is, by the best PSNR: 0 means exactly the frame at `seconds`.
pub fn first_frame_offset(clip: &Path, source: &Path, seconds: f64, frame: f64) -> i32 {
    (-2..=2)
        .map(|k| (k, first_frame_psnr(clip, source, seconds + f64::from(k) * frame)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
        .expect("five candidates")
}

/// Width and height of the first video stream (images too).
pub fn dimensions(file: &Path) -> (u32, u32) {
    let text = probe_video_stream(file, &["-show_entries", "stream=width,height", "-of", "csv=p=0:s=x"]);
    let (w, h) = text.split_once('x').unwrap_or(("0", "0"));
    (w.parse().unwrap_or(0), h.parse().unwrap_or(0))
}
