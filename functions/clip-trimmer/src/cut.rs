//! Trim and merge: one clip from parts of recordings, re-encoding as little as possible.
//!
//! **Smart cut.** In each recording, the GOPs wholly inside the range are stream-copied; only
//! the frames before the first key frame (the head) and from the last key frame on (the tail)
//! are decoded and re-encoded, with the recording's own codec parameters (profile, level,
//! pixel format, B-frames), so the parts join into one stream that decodes cleanly. Every
//! video piece goes through MPEG-TS, where each GOP carries its own parameter sets, and the
//! pieces are joined by the concat demuxer with each piece's exact duration, so the timeline
//! has no holes. Audio is re-encoded once for the whole clip (cheap next to video), which
//! avoids AAC priming clicks at the joins.
//!
//! **Full re-encode** when the recordings cannot be joined by copying (a codec other than
//! H.264, or recordings whose parameters differ): one ffmpeg run decodes all parts, scales them
//! to the first recording's size and encodes one stream. The reason is logged and reported.
//!
//! Frame accuracy: a range boundary is snapped to the nearest frame (never more than half a
//! frame away), so the clip's first frame is the requested start within one frame.

use std::ffi::OsString;
use std::path::Path;

use shared::contracts::clip::ClipMode;
use shared::ffmpeg::{ffmpeg_base_args, Deadline, Supervised};
use shared::source_fence::{concat_of_sources_fence, source_fence};
use shared::{Code, ProcessingError};

use crate::media::{MediaIndex, Packet};

/// Seconds of packets fetched either side of a part, for interleaving (audio stored ahead of
/// or behind the video of the same moment).
const INTERLEAVE_MARGIN_SECS: f64 = 1.0;
/// How far before a seek target ffmpeg may land (its B-frame heuristic is 3/23 s), rounded up.
const SEEK_BACKOFF_SECS: f64 = 0.2;

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Re-encode `frames` frames starting with the frame shown at `first_pts`.
    Encode { first_pts: f64, frames: u32 },
    /// Copy whole GOPs from the key frame shown at `inpoint`, up to (not including) the key
    /// frame decoded at `outpoint` (to the end of the recording when `None`).
    Copy {
        inpoint: f64,
        outpoint: Option<f64>,
        frames: u32,
    },
}

impl Piece {
    pub fn frames(&self) -> u32 {
        match self {
            Piece::Encode { frames, .. } | Piece::Copy { frames, .. } => *frames,
        }
    }
}

/// How one recording's part of the clip is made.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPlan {
    pub pieces: Vec<Piece>,
    /// The part's first frame (file timestamp) and frame count.
    pub first_pts: f64,
    pub frames: u32,
    /// The bytes of the recording the part needs, `[start, end)`.
    pub bytes: (u64, u64),
}

/// Plans the part `[from_secs, to_secs)` (seconds into the recording); `None` if no frame
/// falls in it.
pub fn plan_segment(index: &MediaIndex, from_secs: f64, to_secs: f64) -> Option<SegmentPlan> {
    let half = index.frame_duration() / 2.0;
    let (a, b) = (index.start_time + from_secs, index.start_time + to_secs);
    let wanted: Vec<&Packet> = index
        .frames
        .iter()
        .filter(|f| f.pts >= a - half && f.pts < b - half)
        .collect();
    let (first, last) = (*wanted.first()?, *wanted.last()?);
    let count = |from: f64, to: f64| wanted.iter().filter(|f| f.pts >= from && f.pts < to).count() as u32;
    let keys: Vec<&Packet> = wanted.iter().copied().filter(|f| f.key).collect();
    let mut pieces = Vec::new();
    match (keys.first(), keys.last()) {
        (Some(k1), Some(k2)) => {
            if first.pts < k1.pts {
                pieces.push(Piece::Encode {
                    first_pts: first.pts,
                    frames: count(first.pts, k1.pts),
                });
            }
            let reaches_end = index.frames.last().is_some_and(|f| f.pts == last.pts);
            if reaches_end {
                pieces.push(Piece::Copy {
                    inpoint: k1.pts,
                    outpoint: None,
                    frames: count(k1.pts, f64::INFINITY),
                });
            } else {
                if k2.pts > k1.pts {
                    pieces.push(Piece::Copy {
                        inpoint: k1.pts,
                        outpoint: Some(k2.dts),
                        frames: count(k1.pts, k2.pts),
                    });
                }
                pieces.push(Piece::Encode {
                    first_pts: k2.pts,
                    frames: count(k2.pts, f64::INFINITY),
                });
            }
        }
        _ => pieces.push(Piece::Encode {
            first_pts: first.pts,
            frames: wanted.len() as u32,
        }),
    }
    // Decoding the head starts at the key frame before the first wanted frame, or the one
    // before that: with B-frames, ffmpeg seeks 3/23 s before the requested time.
    let decode_from = index
        .frames
        .iter()
        .filter(|f| f.key && f.pts <= first.pts - SEEK_BACKOFF_SECS)
        .map(|f| f.pts)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(index.frames[0].pts);
    let (lo, hi) = (decode_from - INTERLEAVE_MARGIN_SECS, b + INTERLEAVE_MARGIN_SECS);
    let in_window = index
        .frames
        .iter()
        .chain(&index.audio_packets)
        .filter(|p| p.pts >= lo && p.pts <= hi);
    let (start, end) = in_window.fold((u64::MAX, 0), |(s, e), p| (s.min(p.pos), e.max(p.pos + p.size)));
    Some(SegmentPlan {
        frames: wanted.len() as u32,
        first_pts: first.pts,
        pieces,
        bytes: (start.min(end), end),
    })
}

/// Whether the parts can be joined by copying; the reason when not.
pub fn smart_cut_refusal(indexes: &[&MediaIndex]) -> Option<String> {
    let first = indexes.first()?;
    if first.video.codec != "h264" {
        return Some(format!(
            "smart cut re-encodes the edges with H.264; the recordings are {}",
            first.video.codec
        ));
    }
    if first.video.frame_rate.0 == 0 {
        return Some("the recordings have no constant frame rate".to_owned());
    }
    indexes.iter().find(|other| other.video != first.video).map(|other| {
        format!(
            "recordings differ in codec parameters: {:?} vs {:?}",
            first.video, other.video
        )
    })
}

/// One recording's part, ready to cut.
pub struct Part<'a> {
    pub file: &'a Path,
    pub index: &'a MediaIndex,
    pub plan: SegmentPlan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    SmartCut,
    ReEncode { reason: String },
}

impl Mode {
    /// How results name this mode.
    pub fn kind(&self) -> ClipMode {
        match self {
            Mode::SmartCut => ClipMode::SmartCut,
            Mode::ReEncode { .. } => ClipMode::ReEncode,
        }
    }
}

/// What cutting did.
#[derive(Debug, Clone)]
pub struct Cut {
    pub mode: Mode,
    pub frames: u32,
    pub frames_copied: u32,
    pub has_audio: bool,
}

pub struct Cutter<'a> {
    pub ffmpeg: &'a Path,
    pub work_dir: &'a Path,
    pub deadline: Deadline,
}

impl Cutter<'_> {
    /// Makes `output` (MP4, faststart) from `parts`, in `mode`.
    pub async fn cut(&self, parts: &[Part<'_>], mode: Mode, output: &Path) -> Result<Cut, ProcessingError> {
        let has_audio = parts
            .iter()
            .all(|p| p.index.audio.is_some() && !p.index.audio_packets.is_empty());
        let frames = parts.iter().map(|p| p.plan.frames).sum();
        let frames_copied = match mode {
            Mode::SmartCut => {
                self.smart_cut(parts, has_audio, output).await?;
                parts
                    .iter()
                    .flat_map(|p| &p.plan.pieces)
                    .filter(|piece| matches!(piece, Piece::Copy { .. }))
                    .map(Piece::frames)
                    .sum()
            }
            Mode::ReEncode { .. } => {
                self.re_encode(parts, has_audio, output).await?;
                0
            }
        };
        Ok(Cut {
            mode,
            frames,
            frames_copied,
            has_audio,
        })
    }

    async fn smart_cut(&self, parts: &[Part<'_>], has_audio: bool, output: &Path) -> Result<(), ProcessingError> {
        let mut video_list = String::from("ffconcat version 1.0\n");
        for (i, part) in parts.iter().enumerate() {
            let fd = part.index.frame_duration();
            for (j, piece) in part.plan.pieces.iter().enumerate() {
                let piece_file = self.work_dir.join(format!("video-{i}-{j}.ts"));
                let mut args = ffmpeg_base_args();
                match piece {
                    Piece::Encode { first_pts, frames } => {
                        args.extend(recording_input_options(part.index, *first_pts, part.file));
                        args.extend(os(["-i"]));
                        args.push(part.file.into());
                        args.extend(os(["-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v"]));
                        args.push(frames.to_string().into());
                        args.extend(edge_encoder_args(part.index));
                    }
                    Piece::Copy { inpoint, outpoint, .. } => {
                        let list = self.work_dir.join(format!("copy-{i}-{j}.ffconcat"));
                        let mut text = format!(
                            "ffconcat version 1.0\nfile {}\ninpoint {inpoint:.6}\n",
                            quote(part.file)
                        );
                        if let Some(outpoint) = outpoint {
                            text.push_str(&format!("outpoint {outpoint:.6}\n"));
                        }
                        write(&list, &text).await?;
                        args.extend(concat_of_sources_fence());
                        args.extend(os(["-f", "concat", "-safe", "0", "-i"]));
                        args.push(list.into());
                        args.extend(os(["-map", "0:v:0", "-c", "copy"]));
                    }
                }
                args.extend(os(["-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0"]));
                args.push(piece_file.clone().into());
                self.run(args, "cutting a piece").await?;
                video_list.push_str(&format!(
                    "file {}\nduration {:.6}\n",
                    quote(&piece_file),
                    f64::from(piece.frames()) * fd
                ));
            }
        }
        let list = self.work_dir.join("video.ffconcat");
        write(&list, &video_list).await?;
        let mut args = ffmpeg_base_args();
        args.extend(os(["-f", "concat", "-safe", "0", "-i"]));
        args.push(list.into());
        if has_audio {
            let audio = self.work_dir.join("audio.m4a");
            self.audio(parts, &audio).await?;
            args.extend(os(["-i"]));
            args.push(audio.into());
            args.extend(os(["-map", "0:v:0", "-map", "1:a:0"]));
        } else {
            args.extend(os(["-map", "0:v:0"]));
        }
        args.extend(os(["-c", "copy", "-movflags", "+faststart", "-f", "mp4"]));
        args.push(output.into());
        self.run(args, "joining the pieces").await
    }

    /// The clip's audio, re-encoded once from every part.
    async fn audio(&self, parts: &[Part<'_>], output: &Path) -> Result<(), ProcessingError> {
        let mut args = ffmpeg_base_args();
        let mut filter = String::new();
        for (i, part) in parts.iter().enumerate() {
            args.extend(recording_input_options(part.index, part.plan.first_pts, part.file));
            args.extend(os(["-t"]));
            args.push(format!("{:.6}", f64::from(part.plan.frames) * part.index.frame_duration()).into());
            args.extend(os(["-i"]));
            args.push(part.file.into());
            filter.push_str(&format!("[{i}:a:0]"));
        }
        filter.push_str(&format!("concat=n={}:v=0:a=1[a]", parts.len()));
        let audio = parts[0].index.audio.as_ref().expect("parts have audio");
        args.extend(os(["-filter_complex"]));
        args.push(filter.into());
        args.extend(os(["-map", "[a]", "-c:a", "aac", "-b:a", "128k", "-ar"]));
        args.push(audio.sample_rate.max(8000).to_string().into());
        args.extend(os(["-ac"]));
        args.push(audio.channels.clamp(1, 2).to_string().into());
        args.push(output.into());
        self.run(args, "encoding the audio").await
    }

    async fn re_encode(&self, parts: &[Part<'_>], has_audio: bool, output: &Path) -> Result<(), ProcessingError> {
        let first = parts[0].index;
        let (width, height) = (even(first.video.width), even(first.video.height));
        let (num, den) = match first.video.frame_rate {
            (0, _) | (_, 0) => (30, 1),
            rate => rate,
        };
        let mut args = ffmpeg_base_args();
        let mut filter = String::new();
        let mut joined = String::new();
        for (i, part) in parts.iter().enumerate() {
            args.extend(recording_input_options(part.index, part.plan.first_pts, part.file));
            args.extend(os(["-t"]));
            args.push(format!("{:.6}", f64::from(part.plan.frames) * part.index.frame_duration()).into());
            args.extend(os(["-i"]));
            args.push(part.file.into());
            filter.push_str(&format!(
                "[{i}:v:0]trim=end_frame={frames},setpts=PTS-STARTPTS,\
                 scale={width}:{height}:force_original_aspect_ratio=decrease,\
                 pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={num}/{den}[v{i}];",
                frames = part.plan.frames
            ));
            joined.push_str(&format!("[v{i}]"));
            if has_audio {
                filter.push_str(&format!(
                    "[{i}:a:0]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a{i}];"
                ));
                joined.push_str(&format!("[a{i}]"));
            }
        }
        filter.push_str(&format!(
            "{joined}concat=n={}:v=1:a={}{}",
            parts.len(),
            u8::from(has_audio),
            if has_audio { "[v][a]" } else { "[v]" }
        ));
        args.extend(os(["-filter_complex"]));
        args.push(filter.into());
        args.extend(os([
            "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        ]));
        if has_audio {
            args.extend(os(["-map", "[a]", "-c:a", "aac", "-b:a", "128k"]));
        }
        args.extend(os(["-movflags", "+faststart", "-f", "mp4"]));
        args.push(output.into());
        self.run(args, "re-encoding the clip").await
    }

    async fn run(&self, args: Vec<OsString>, what: &str) -> Result<(), ProcessingError> {
        Supervised::new(self.ffmpeg, self.deadline)
            .args(args)
            .run()
            .await
            .map(|_| ())
            .map_err(|e| match e {
                shared::ffmpeg::RunError::Exit { stderr_tail, .. } => {
                    ProcessingError::failed(Code::ClipFailed, format!("ffmpeg failed {what}: {stderr_tail}"))
                }
                other => other.into_processing_error(Code::ClipFailed),
            })
    }
}

/// Input options for the recording `file`: fenced in ([`source_fence`]: a recording is the
/// camera's, not ours), and decoding started at the frame shown at `pts` (a file timestamp):
/// ffmpeg counts `-ss` from the file's start time, and half a frame earlier keeps that frame and
/// drops the one before.
pub fn recording_input_options(index: &MediaIndex, pts: f64, file: &Path) -> Vec<OsString> {
    let seek = (pts - index.format_start_time - index.frame_duration() / 2.0).max(0.0);
    let mut options = source_fence(file.as_os_str());
    options.extend(["-ss".into(), format!("{seek:.6}").into()]);
    options
}

/// Encoder options for the edges: H.264 with the recording's own parameters.
fn edge_encoder_args(index: &MediaIndex) -> Vec<OsString> {
    let mut args = os(["-c:v", "libx264", "-preset", "veryfast", "-crf", "16"]);
    if let Some(pix_fmt) = &index.video.pix_fmt {
        args.extend(os(["-pix_fmt", pix_fmt]));
    }
    if let Some(profile) = index.video.profile.as_deref().and_then(x264_profile) {
        args.extend(os(["-profile:v", profile]));
    }
    if let Some(level) = index.video.level.filter(|l| *l > 0) {
        args.extend(os(["-level:v"]));
        args.push(format!("{}.{}", level / 10, level % 10).into());
    }
    args.extend(os(["-bf", if index.has_b_frames { "2" } else { "0" }]));
    args
}

/// ffprobe's H.264 profile names → x264's.
fn x264_profile(profile: &str) -> Option<&'static str> {
    Some(match profile {
        "Baseline" | "Constrained Baseline" => "baseline",
        "Main" => "main",
        "High" => "high",
        "High 10" => "high10",
        "High 4:2:2" => "high422",
        "High 4:4:4 Predictive" => "high444",
        _ => return None,
    })
}

fn even(n: u32) -> u32 {
    (n.max(2)) & !1
}

fn os<const N: usize>(items: [&str; N]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// A path as an ffconcat string literal.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

async fn write(path: &Path, text: &str) -> Result<(), ProcessingError> {
    tokio::fs::write(path, text)
        .await
        .map_err(shared::storage::local_io("writing", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{AudioParams, VideoParams};

    /// A 25 fps recording starting at `start`, a key frame every `gop` frames, B-frames
    /// (pts two frames after dts), 1000 bytes per frame.
    fn index(start: f64, frames: usize, gop: usize) -> MediaIndex {
        let fd = 0.04;
        let frames: Vec<Packet> = (0..frames)
            .map(|i| Packet {
                pts: start + i as f64 * fd,
                dts: start + i as f64 * fd - 2.0 * fd,
                pos: 1000 * i as u64,
                size: 1000,
                key: i % gop == 0,
            })
            .collect();
        MediaIndex {
            video: VideoParams {
                codec: "h264".into(),
                profile: Some("High".into()),
                level: Some(30),
                pix_fmt: Some("yuv420p".into()),
                width: 640,
                height: 360,
                frame_rate: (25, 1),
            },
            audio: Some(AudioParams {
                codec: "aac".into(),
                sample_rate: 48000,
                channels: 1,
            }),
            start_time: start,
            format_start_time: start,
            frames,
            audio_packets: vec![],
            has_b_frames: true,
        }
    }

    #[test]
    fn a_part_starting_mid_gop_re_encodes_only_its_edges() {
        let idx = index(0.08, 250, 50); // 10 s, key frames every 2 s
        let plan = plan_segment(&idx, 3.31, 6.51).unwrap();
        // 3.31 s is nearest frame 83 (3.32 s into the recording); 6.51 s ends after frame 162.
        assert!(
            (plan.first_pts - (0.08 + 83.0 * 0.04)).abs() < 1e-9,
            "{}",
            plan.first_pts
        );
        assert_eq!(
            plan.pieces,
            [
                Piece::Encode {
                    first_pts: plan.first_pts,
                    frames: 17
                },
                Piece::Copy {
                    inpoint: 0.08 + 4.0,
                    outpoint: Some(0.08 + 6.0 - 0.08),
                    frames: 50
                },
                Piece::Encode {
                    first_pts: 0.08 + 6.0,
                    frames: 13
                },
            ]
        );
        assert_eq!(plan.frames, 80);
        assert_eq!(plan.pieces.iter().map(Piece::frames).sum::<u32>(), plan.frames);
    }

    #[test]
    fn a_part_running_to_the_end_copies_its_last_gops() {
        let idx = index(0.0, 250, 50);
        let plan = plan_segment(&idx, 4.0, 10.0).unwrap();
        assert_eq!(
            plan.pieces,
            [Piece::Copy {
                inpoint: 4.0,
                outpoint: None,
                frames: 150
            }]
        );
    }

    #[test]
    fn a_part_inside_one_gop_is_re_encoded_whole() {
        let idx = index(0.0, 250, 50);
        let plan = plan_segment(&idx, 2.51, 3.51).unwrap();
        assert_eq!(
            plan.pieces,
            [Piece::Encode {
                first_pts: 2.52,
                frames: 25
            }]
        );
        assert!(plan_segment(&idx, 20.0, 21.0).is_none(), "past the end: nothing");
    }

    #[test]
    fn only_the_bytes_around_the_part_are_needed() {
        let idx = index(0.0, 15_000, 50); // 10 minutes
        let plan = plan_segment(&idx, 120.0, 180.0).unwrap();
        let (start, end) = plan.bytes;
        let needed = end - start;
        let part = 1000 * 60 * 25;
        // At most one GOP (2 s) before the part, for ffmpeg's early seek, and the interleaving
        // margin (1 s) either side, inclusive of its last packet.
        let slack = 1000 * 25 * (2 + 1 + 1) + 1000;
        assert!(needed >= part && needed <= part + slack, "{needed} for {part}");
    }

    #[test]
    fn differing_recordings_are_re_encoded_with_the_reason() {
        let a = index(0.0, 50, 50);
        let mut b = index(0.0, 50, 50);
        assert_eq!(smart_cut_refusal(&[&a, &b]), None);
        b.video.width = 1280;
        assert!(smart_cut_refusal(&[&a, &b])
            .unwrap()
            .contains("differ in codec parameters"));
        let mut hevc = index(0.0, 50, 50);
        hevc.video.codec = "hevc".into();
        assert!(smart_cut_refusal(&[&hevc]).unwrap().contains("hevc"));
    }

    #[test]
    fn edges_are_encoded_like_the_recording() {
        let args: Vec<String> = edge_encoder_args(&index(0.0, 1, 1))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("-profile:v high -level:v 3.0 -bf 2"), "{joined}");
        assert!(joined.contains("-pix_fmt yuv420p"), "{joined}");
    }
}
