//! A recording's index as ffprobe reads it from a replica: stream parameters and every
//! packet's time, position and key-frame flag. Reading packets of a replica costs no network
//! traffic: the index is in `moov`, and the sample data ffprobe skips over is local.

use std::path::Path;

use serde::Deserialize;
use shared::ffmpeg::{Deadline, Supervised};
use shared::source_fence::source_fence;
use shared::{Code, ProcessingError};

/// What must match between recordings for their GOPs to be copied into one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoParams {
    pub codec: String,
    pub profile: Option<String>,
    pub level: Option<i64>,
    pub pix_fmt: Option<String>,
    pub width: u32,
    pub height: u32,
    pub frame_rate: (u32, u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioParams {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
}

/// One packet: its presentation and decoding time (seconds, the file's own timestamps),
/// where it is in the file, and whether it starts a GOP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packet {
    pub pts: f64,
    pub dts: f64,
    pub pos: u64,
    pub size: u64,
    pub key: bool,
}

#[derive(Debug, Clone)]
pub struct MediaIndex {
    pub video: VideoParams,
    pub audio: Option<AudioParams>,
    /// The video stream's first timestamp; times "into the recording" count from here.
    pub start_time: f64,
    /// Video packets in presentation order.
    pub frames: Vec<Packet>,
    /// Audio packets in presentation order.
    pub audio_packets: Vec<Packet>,
    /// Whether the recording has B-frames (the edges are encoded the same way).
    pub has_b_frames: bool,
    /// The file's start time (the earliest stream's): ffmpeg's `-ss` counts from here.
    pub format_start_time: f64,
}

impl MediaIndex {
    pub fn frame_duration(&self) -> f64 {
        let (num, den) = self.video.frame_rate;
        if num == 0 || den == 0 {
            return 1.0 / 30.0;
        }
        f64::from(den) / f64::from(num)
    }
}

/// Seconds of packets read before a part: enough to reach the key frame its first frame
/// depends on. Recordings with GOPs longer than this are not supported (cameras use 1–4 s).
const LOOK_BEHIND_SECS: f64 = 20.0;
/// Seconds read after a part: enough to see whether it runs to the recording's end.
const LOOK_AHEAD_SECS: f64 = 5.0;

/// What ffprobe is asked for: stream parameters and the file's start time, and, for an
/// index, every packet.
const STREAM_ENTRIES: &str = "stream=index,codec_type,codec_name,profile,level,pix_fmt,width,height,r_frame_rate,\
                              start_time,has_b_frames,sample_rate,channels:format=start_time";
const PACKET_ENTRIES: &str = "packet=stream_index,pts_time,dts_time,pos,size,flags";

/// Reads the index of `file` for the part `[from_secs, to_secs)` (seconds into the recording),
/// or all of it. Reading only the window keeps the listing small for long recordings.
///
/// Packets are listed with ffmpeg's parsers off (`-fflags +noparse`): the times, positions
/// and key-frame flags then come from the MP4 index alone. With parsers on, ffprobe would
/// inspect each sample's bytes, which in a replica are not fetched yet, and report no key
/// frames. Codec parameters that need decoding (profile, pixel format) are read afterwards by
/// [`probe_params`], once the part's bytes are present.
pub async fn probe_index(
    ffprobe: &Path,
    file: &Path,
    deadline: Deadline,
    window: Option<(f64, f64)>,
) -> Result<MediaIndex, ProcessingError> {
    let interval = window.map(|(from, to)| ((from - LOOK_BEHIND_SECS).max(0.0), to + LOOK_AHEAD_SECS));
    let entries = format!("{STREAM_ENTRIES}:{PACKET_ENTRIES}");
    let json = run_ffprobe(
        ffprobe,
        file,
        deadline,
        &["-fflags", "+noparse+nofillin"],
        interval,
        &entries,
    )
    .await?;
    parse_index(&json)
}

/// The codec parameters of `file`, decoded from the part `[from_secs, to_secs)` (whose bytes
/// must be present), into `index`.
pub async fn probe_params(
    ffprobe: &Path,
    file: &Path,
    deadline: Deadline,
    window: (f64, f64),
    index: &mut MediaIndex,
) -> Result<(), ProcessingError> {
    let interval = Some((window.0.max(0.0), window.1));
    let json = run_ffprobe(ffprobe, file, deadline, &[], interval, STREAM_ENTRIES).await?;
    let decoded = parse_streams(&parse_probe(&json)?)?;
    index.video = VideoParams {
        frame_rate: index.video.frame_rate,
        ..decoded.video
    };
    index.audio = decoded.audio;
    index.has_b_frames = decoded.has_b_frames;
    Ok(())
}

/// Runs ffprobe with JSON output on `file` (limited to `interval`, in seconds, if given).
async fn run_ffprobe(
    ffprobe: &Path,
    file: &Path,
    deadline: Deadline,
    options: &[&str],
    interval: Option<(f64, f64)>,
    entries: &str,
) -> Result<Vec<u8>, ProcessingError> {
    // A recording is the camera's, not ours: read it fenced in.
    let mut command = Supervised::new(ffprobe, deadline)
        .args(source_fence(file.as_os_str()))
        .args(options);
    if let Some((from, to)) = interval {
        command = command.arg("-read_intervals").arg(format!("{from:.3}%{to:.3}"));
    }
    let output = command
        .args(["-v", "error", "-of", "json", "-show_entries", entries])
        .arg(file)
        .run()
        .await
        .map_err(|e| match e {
            shared::ffmpeg::RunError::Exit { stderr_tail, .. } => ProcessingError::failed(
                Code::RecordingCorrupt,
                format!("ffprobe cannot read the recording: {stderr_tail}"),
            ),
            other => other.into_processing_error(Code::RecordingCorrupt),
        })?;
    Ok(output.stdout)
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<Stream>,
    #[serde(default)]
    packets: Vec<RawPacket>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Format {
    start_time: Option<String>,
}

#[derive(Deserialize)]
struct Stream {
    index: usize,
    codec_type: Option<String>,
    codec_name: Option<String>,
    profile: Option<String>,
    level: Option<i64>,
    pix_fmt: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    r_frame_rate: Option<String>,
    start_time: Option<String>,
    has_b_frames: Option<u32>,
    sample_rate: Option<String>,
    channels: Option<u32>,
}

#[derive(Deserialize)]
struct RawPacket {
    stream_index: usize,
    pts_time: Option<String>,
    dts_time: Option<String>,
    pos: Option<String>,
    size: Option<String>,
    flags: Option<String>,
}

/// The stream-level part of a probe.
struct StreamParams {
    video: VideoParams,
    audio: Option<AudioParams>,
    has_b_frames: bool,
    video_index: usize,
    audio_index: Option<usize>,
    start_time: Option<f64>,
    format_start_time: Option<f64>,
}

fn corrupt(why: impl Into<String>) -> ProcessingError {
    ProcessingError::failed(Code::RecordingCorrupt, why)
}

fn parse_probe(json: &[u8]) -> Result<Probe, ProcessingError> {
    serde_json::from_slice(json).map_err(|e| corrupt(format!("unreadable ffprobe output: {e}")))
}

fn parse_streams(probe: &Probe) -> Result<StreamParams, ProcessingError> {
    let video_stream = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.width.unwrap_or(0) > 0)
        .ok_or_else(|| corrupt("the recording has no video stream"))?;
    let audio_stream = probe.streams.iter().find(|s| s.codec_type.as_deref() == Some("audio"));
    let frame_rate = video_stream
        .r_frame_rate
        .as_deref()
        .and_then(|r| r.split_once('/'))
        .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
        .unwrap_or((0, 1));
    Ok(StreamParams {
        video: VideoParams {
            codec: video_stream.codec_name.clone().unwrap_or_default(),
            profile: video_stream.profile.clone(),
            level: video_stream.level,
            pix_fmt: video_stream.pix_fmt.clone(),
            width: video_stream.width.unwrap_or(0),
            height: video_stream.height.unwrap_or(0),
            frame_rate,
        },
        audio: audio_stream.map(|s| AudioParams {
            codec: s.codec_name.clone().unwrap_or_default(),
            sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0),
            channels: s.channels.unwrap_or(0),
        }),
        has_b_frames: video_stream.has_b_frames.unwrap_or(0) > 0,
        video_index: video_stream.index,
        audio_index: audio_stream.map(|s| s.index),
        start_time: video_stream.start_time.as_deref().and_then(|s| s.parse().ok()),
        format_start_time: probe
            .format
            .as_ref()
            .and_then(|f| f.start_time.as_deref())
            .and_then(|s| s.parse().ok()),
    })
}

pub fn parse_index(json: &[u8]) -> Result<MediaIndex, ProcessingError> {
    let probe = parse_probe(json)?;
    let streams = parse_streams(&probe)?;
    let packets_of = |stream: usize| -> Vec<Packet> {
        let mut packets: Vec<Packet> = probe
            .packets
            .iter()
            .filter(|p| p.stream_index == stream)
            .filter_map(|p| {
                let pts: f64 = p.pts_time.as_deref()?.parse().ok()?;
                Some(Packet {
                    pts,
                    dts: p.dts_time.as_deref().and_then(|d| d.parse().ok()).unwrap_or(pts),
                    pos: p.pos.as_deref()?.parse().ok()?,
                    size: p.size.as_deref()?.parse().ok()?,
                    key: p.flags.as_deref().is_some_and(|f| f.starts_with('K')),
                })
            })
            .collect();
        packets.sort_by(|a, b| a.pts.total_cmp(&b.pts));
        packets
    };
    let frames = packets_of(streams.video_index);
    let audio_packets = streams.audio_index.map(packets_of).unwrap_or_default();
    if frames.is_empty() || !frames.iter().any(|f| f.key) {
        return Err(corrupt("the recording's video stream has no frames (or no key frame)"));
    }
    let start_time = streams.start_time.unwrap_or(frames[0].pts);
    Ok(MediaIndex {
        format_start_time: streams.format_start_time.unwrap_or(start_time),
        video: streams.video,
        audio: streams.audio,
        start_time,
        has_b_frames: streams.has_b_frames,
        frames,
        audio_packets,
    })
}
