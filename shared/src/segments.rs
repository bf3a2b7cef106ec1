//! Segmented rendering: a source too long for one invocation is cut into segments on the
//! output's keyframe grid, each segment is encoded alone (in parallel, by the segment function
//! under Step Functions), and the segments are joined by stream copy into the file a single
//! pass would have made, frame for frame.
//!
//! Why the joined file is exact:
//! * Output frame `n` is shown at `n / rate` in both. Every segment is encoded with `-copyts`,
//!   the `fps` filter anchored at the segment's first frame (`start_time`) and an exact frame
//!   count, so its frames carry the single pass's timestamps: none is doubled or lost at a join.
//! * Every segment starts where the single pass has a keyframe (a whole number of the profile's
//!   keyframe intervals), keyframes inside it are forced on the same clock as the single pass's,
//!   and x264 starts each encode with an IDR frame: a segment is a closed run of GOPs, so the
//!   segments' bytes can simply be appended.
//! * Segments are MPEG-TS, which keeps those timestamps. They are shifted by
//!   [`TS_OFFSET_SECS`] so that no B-frame's decode time is negative (the TS muxer would
//!   otherwise move the first segment), and shifted back when the appended stream is remuxed.
//! * The audio is cut into its own, longer segments on the AAC frame grid of the single pass
//!   ([`audio_segments`]), each encoded from a whole second before it with a lead-in and a
//!   lead-out, and only the segment's own frames are kept ([`keep_audio_frames`]). Every kept
//!   frame was coded from the real sound around it, and the encoder's priming (its silent first
//!   frame) is kept only at the start of the file, so the frames join without a gap or a click.
//!   A source whose audio timestamps do not name samples (Matroska's milliseconds) has its audio
//!   encoded once, as one segment.
//! * Accurate input seeking (`-ss` before `-i`) on a presigned URL makes ffmpeg read the
//!   segment's byte range and the container's index, never the whole source.
//!
//! Why a segment is encoded with a lead-in and a lead-out it throws away: an encode that starts
//! or ends at the segment's edge is coded differently there from the single pass, which runs
//! on. At its end, x264's lookahead and B-frame decisions see the end of the stream instead of
//! the frames that follow; at its start, its one-pass rate control (average bitrate with a VBV
//! buffer) has no history. Measured on a 1080p source, the last frame before a join came out
//! 1.5 dB (PSNR) below the single pass's, and the frames after it up to 0.8 dB. So every segment
//! but the first encodes [`DEFAULT_LEAD_IN_SECS`] of the frames before it, every segment but
//! the last [`DEFAULT_LEAD_OUT_SECS`] of the frames after it, and the segment muxer cuts both
//! off at the keyframes that bound the segment (GOPs are closed, so nothing kept refers to a
//! dropped frame).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ffmpeg::ffmpeg_base_args;
use crate::probe::AudioStream;
use crate::profiles::{RenditionPlan, RenditionProfile};
use crate::source_fence::source_fence;

/// How far segment timestamps are moved up (seconds), and moved back at the join.
pub const TS_OFFSET_SECS: u32 = 10;

/// How much output time one video segment encodes, by default (the template's `SegmentSeconds`).
/// Every segment but the first and the last encodes its lead-in and lead-out beside it and starts
/// its own ffmpeg: at 30 s the segmented render took 1.110x the CPU of the single pass on the
/// 10-minute 1080p source of `make bench`, over the 1.10x it may cost. At 60 s the leads are half
/// as many frames (2.25 %) and it measured 0.947x, within the machine's noise of the single pass.
/// An hour of source is still fewer parts (72 with the audio) than the template's 100 at once,
/// so it is rendered in one wave as long as a 720p segment of 60 s takes (30.5 s projected).
pub const DEFAULT_SEGMENT_SECS: f64 = 60.0;

/// How much output time a segment encodes before its first frame and drops, by default.
pub const DEFAULT_LEAD_IN_SECS: f64 = 1.0;

/// How much output time a segment encodes after its last frame and drops, by default: more than
/// x264's lookahead of the profiles' presets (10 frames for `veryfast`, at up to 30 fps).
pub const DEFAULT_LEAD_OUT_SECS: f64 = 0.5;

/// An exact frame rate: `num / den` frames per second (30/1, 30000/1001, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    /// The exact rate behind a probed rate: whole rates and the NTSC family (×1000/1001) are
    /// recognised; anything else is kept to a thousandth of a frame per second.
    pub fn from_fps(fps: f64) -> Option<FrameRate> {
        if !fps.is_finite() || fps <= 0.0 || fps > 1000.0 {
            return None;
        }
        if (fps - fps.round()).abs() < 0.001 {
            return Some(FrameRate {
                num: fps.round() as u32,
                den: 1,
            });
        }
        let ntsc = (fps * 1.001).round();
        if (ntsc / 1.001 - fps).abs() < 0.001 {
            return Some(FrameRate {
                num: ntsc as u32 * 1000,
                den: 1001,
            });
        }
        Some(FrameRate {
            num: (fps * 1000.0).round() as u32,
            den: 1000,
        })
    }

    /// When output frame `frame` is shown, in seconds.
    pub fn seconds_at(&self, frame: u64) -> f64 {
        frame as f64 * self.den as f64 / self.num as f64
    }

    /// The first frame shown at or after `seconds`.
    pub fn frame_at_or_after(&self, seconds: f64) -> u64 {
        // The small allowance keeps a boundary that is exactly on a frame (4 s at 30 fps) on it.
        (seconds * self.num as f64 / self.den as f64 - 1e-6).ceil().max(0.0) as u64
    }

    /// The rate as ffmpeg spells it.
    pub fn ffmpeg(&self) -> String {
        format!("{}/{}", self.num, self.den)
    }
}

/// One segment of a [`SegmentPlan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// 0, 1, …: the order of the join.
    pub index: u32,
    /// The output frame the segment starts with (a keyframe of the single pass).
    pub first_frame: u64,
    /// How many frames it encodes; `None` for the last segment, which runs to the source's end
    /// (so the total is what the single pass makes, whatever the probed duration said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    /// Which of the profile's keyframe intervals it starts at: its forced keyframes continue
    /// the single pass's clock from there.
    pub first_keyframe_interval: u64,
    /// How many frames before `first_frame` it encodes and drops (rate control's warm-up).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lead_in_frames: u64,
    /// How many frames after its last it encodes and drops (the lookahead's run-on).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lead_out_frames: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A source's output cut into segments of whole keyframe intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentPlan {
    /// The output's frame rate (the source's, or the profile's cap).
    pub rate: FrameRate,
    /// The output frames the probed duration gives (the last segment settles the exact count).
    pub expected_frames: u64,
    pub segments: Vec<Segment>,
}

impl SegmentPlan {
    /// Cuts `duration_secs` of output at `rate` into segments of about `segment_secs`, each a
    /// whole number of `keyframe_interval_secs`. A tail shorter than one interval joins the
    /// segment before it, so that no segment is empty however the probed duration rounds.
    /// Every segment but the first starts with `lead_in_secs` of lead-in, and every segment but
    /// the last ends with `lead_out_secs` of lead-out (rounded up to frames, a lead-out to at
    /// most one keyframe interval, which the next segment always has).
    pub fn new(
        duration_secs: f64,
        rate: FrameRate,
        keyframe_interval_secs: f64,
        segment_secs: f64,
        lead_in_secs: f64,
        lead_out_secs: f64,
    ) -> SegmentPlan {
        let expected_frames = (duration_secs.max(0.0) * rate.num as f64 / rate.den as f64).round() as u64;
        let intervals_per_segment = (segment_secs / keyframe_interval_secs).round().max(1.0) as u64;
        let interval_frames = rate.frame_at_or_after(keyframe_interval_secs).max(1);
        let lead_in_frames = rate.frame_at_or_after(lead_in_secs.max(0.0));
        let lead_out_frames = rate.frame_at_or_after(lead_out_secs.max(0.0)).min(interval_frames);
        let boundary = |segment: u64| {
            let interval = segment * intervals_per_segment;
            (
                interval,
                rate.frame_at_or_after(interval as f64 * keyframe_interval_secs),
            )
        };
        let mut segments = Vec::new();
        let mut index = 0u64;
        loop {
            let (first_keyframe_interval, first_frame) = boundary(index);
            let (_, next_frame) = boundary(index + 1);
            let last = next_frame + interval_frames > expected_frames;
            segments.push(Segment {
                index: index as u32,
                first_frame,
                frames: (!last).then_some(next_frame - first_frame),
                first_keyframe_interval,
                lead_in_frames: lead_in_frames.min(first_frame),
                lead_out_frames: if last { 0 } else { lead_out_frames },
            });
            if last {
                break;
            }
            index += 1;
        }
        SegmentPlan {
            rate,
            expected_frames,
            segments,
        }
    }
}

/// The ffmpeg run that encodes one segment, and the file it leaves the segment in.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentCommand {
    pub args: Vec<OsString>,
    pub output: PathBuf,
}

/// The ffmpeg run that encodes one segment of `input` (a path or a URL) to an MPEG-TS file in
/// `dir`: video only, at the single pass's frame times and keyframes. With a lead-in or a
/// lead-out, the segment muxer writes the pieces to `part-0.ts`, `part-1.ts`, … cutting at the
/// segment's first frame and at the frame after its last, both forced keyframes; the output is
/// the segment's piece.
pub fn segment_command(
    profile: &RenditionProfile,
    plan: &RenditionPlan,
    rate: FrameRate,
    segment: &Segment,
    input: &OsStr,
    dir: &Path,
) -> SegmentCommand {
    let encode_from = segment.first_frame - segment.lead_in_frames.min(segment.first_frame);
    let lead_in = segment.first_frame - encode_from;
    let start = rate.seconds_at(encode_from);
    let mut args = ffmpeg_base_args();
    // A decoding error ends the segment with an error instead of encoding damaged pictures
    // (ffmpeg conceals them and exits 0 otherwise): a corrupt stretch fails the rendition by name.
    args.push("-xerror".into());
    if encode_from > 0 {
        // Decode from one output frame early, so that the `fps` filter sees the source frame
        // nearest to the first frame time; the filter drops what is before it.
        let seek = rate.seconds_at(encode_from - 1);
        args.extend(["-ss".into(), OsString::from(format!("{seek:.6}"))]);
    }
    args.extend(source_fence(input));
    args.push("-copyts".into());
    args.push("-i".into());
    args.push(input.to_owned());
    let filters = format!(
        "fps={}:start_time={start:.6},{}",
        rate.ffmpeg(),
        profile.picture_filters(plan)
    );
    args.extend(["-map", "0:v:0", "-an", "-vf", &filters].map(OsString::from));
    let lead_out = segment.frames.map_or(0, |_| segment.lead_out_frames);
    if let Some(frames) = segment.frames {
        args.extend([
            "-frames:v".into(),
            OsString::from((lead_in + frames + lead_out).to_string()),
        ]);
    }
    args.extend(profile.video_encoder_args(&forced_keyframes(profile, segment, start)));
    args.extend(
        [
            "-output_ts_offset",
            &TS_OFFSET_SECS.to_string(),
            "-muxdelay",
            "0",
            "-muxpreload",
            "0",
        ]
        .map(OsString::from),
    );
    // Packets arrive in decode order and GOPs are closed, so the lead-in is the first `lead_in`
    // packets, the segment the next `frames`, each piece starting with its keyframe.
    let cuts: Vec<String> = [
        (lead_in > 0).then_some(lead_in),
        segment.frames.filter(|_| lead_out > 0).map(|frames| lead_in + frames),
    ]
    .into_iter()
    .flatten()
    .map(|cut| cut.to_string())
    .collect();
    let output = if cuts.is_empty() {
        args.extend(["-f", "mpegts"].map(OsString::from));
        let output = dir.join("part-0.ts");
        args.push(output.clone().into_os_string());
        output
    } else {
        args.extend(
            [
                "-f",
                "segment",
                "-segment_format",
                "mpegts",
                "-segment_frames",
                &cuts.join(","),
            ]
            .map(OsString::from),
        );
        args.push(dir.join("part-%d.ts").into_os_string());
        dir.join(if lead_in > 0 { "part-1.ts" } else { "part-0.ts" })
    };
    SegmentCommand { args, output }
}

/// The `-force_key_frames` expression that puts a segment's keyframes where the single pass
/// has them. The single pass forces one when `t` reaches `n_forced` intervals. In this
/// expression `t` counts from the encode's first frame (`start`, in output time), not from the
/// timestamps `-copyts` keeps, so the segment's first keyframe (interval K, at K×I) is at
/// `t = K×I − start`, and one follows every interval. (A lead-in starts with the IDR frame x264
/// opens every encode with and has no forced keyframe before the segment's.) The microsecond
/// taken off keeps a frame exactly on the boundary on it despite floating point; frames are
/// at least 33 µs apart at the rates we accept.
fn forced_keyframes(profile: &RenditionProfile, segment: &Segment, start: f64) -> String {
    let interval = profile.video.keyframe_interval_secs;
    let first_keyframe = segment.first_keyframe_interval as f64 * interval - start - 1e-6;
    format!("expr:gte(t,n_forced*{interval}{first_keyframe:+.6})")
}

/// Samples in one AAC-LC frame.
pub const AAC_FRAME_SAMPLES: u64 = 1024;

/// The samples ffmpeg's `aac` encoder puts before the first one (its `initial_padding`): the
/// first frame of every encode, which a player skips (the MP4's edit list says so).
pub const AAC_PRIMING_SAMPLES: u64 = 1024;

/// How much audio one audio segment encodes, by default. Audio encodes about ten times faster
/// than 720p video (`make bench`: 301.5 s of audio in 11.8 s, a 30 s 720p segment in 11.6 s),
/// so an audio segment of 5 minutes takes about half as long as a 720p video segment of the
/// default 60 s ([`DEFAULT_SEGMENT_SECS`]), and an hour of sound is 12 parts instead of one task
/// that bounds the whole rendition's wall time.
pub const DEFAULT_AUDIO_SEGMENT_SECS: f64 = 300.0;

/// One stretch of a rendition's audio, counted in the output's AAC frames: frame `n` holds the
/// samples `n × 1024 ..` of the single pass (after its priming).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioSegment {
    /// 0, 1, …: the order of the join.
    pub index: u32,
    pub first_frame: u64,
    /// How many frames it keeps; `None` for the last segment, which runs to the audio's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    /// How many frames before `first_frame` it encodes and drops.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lead_in_frames: u64,
    /// How many frames after its last it encodes and drops.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lead_out_frames: u64,
}

/// How long `frames` AAC frames last at `sample_rate`, in seconds.
pub fn aac_frames_secs(frames: u64, sample_rate: u32) -> f64 {
    (frames * AAC_FRAME_SAMPLES) as f64 / f64::from(sample_rate)
}

impl AudioSegment {
    /// When its first kept sample is shown, in seconds, at the output's `sample_rate`.
    pub fn start_secs(&self, sample_rate: u32) -> f64 {
        aac_frames_secs(self.first_frame, sample_rate)
    }

    /// The whole audio as one segment: encoded once.
    pub fn whole() -> AudioSegment {
        AudioSegment {
            index: 0,
            first_frame: 0,
            frames: None,
            lead_in_frames: 0,
            lead_out_frames: 0,
        }
    }
}

/// The audio of `source` cut into segments of about `segment_secs` for `profile`, each with
/// `lead_in_secs` before it and `lead_out_secs` after it (rounded up to frames). Or, when it
/// cannot be cut to the sample, why not: the caller then encodes it whole
/// ([`AudioSegment::whole`]).
pub fn audio_segments(
    profile: &RenditionProfile,
    source: &AudioStream,
    segment_secs: f64,
    lead_in_secs: f64,
    lead_out_secs: f64,
) -> Result<Vec<AudioSegment>, &'static str> {
    if profile.audio.encoder != "aac" {
        return Err("the profile's audio encoder is not ffmpeg's aac, whose frames and priming the cut counts on");
    }
    if !source.timestamps_name_samples() {
        return Err("the source's audio timestamps do not name samples (its time base is coarser than a sample)");
    }
    let rate = f64::from(profile.audio.sample_rate);
    let half_a_sample = 0.5 / f64::from(source.sample_rate.unwrap_or(profile.audio.sample_rate));
    if source.start_secs.is_none_or(|start| start.abs() > half_a_sample) {
        return Err("the source's audio does not start at 0");
    }
    let duration = source.duration_secs.ok_or("the source's audio has no duration")?;
    let frames_in = |secs: f64| (secs.max(0.0) * rate / AAC_FRAME_SAMPLES as f64 - 1e-9).ceil() as u64;
    let total = (duration * rate / AAC_FRAME_SAMPLES as f64).floor() as u64;
    let per_segment = frames_in(segment_secs).max(1);
    let (lead_in, lead_out) = (frames_in(lead_in_secs), frames_in(lead_out_secs));
    // A tail shorter than a tenth of a segment, or than the lead-out and a second to spare
    // (the probed duration is a container's figure), joins the segment before.
    let shortest_tail = (per_segment / 10).max(lead_out + frames_in(1.0));
    let mut segments = Vec::new();
    loop {
        let first_frame = segments.len() as u64 * per_segment;
        let last = first_frame + per_segment + shortest_tail > total;
        segments.push(AudioSegment {
            index: segments.len() as u32,
            first_frame,
            frames: (!last).then_some(per_segment),
            lead_in_frames: lead_in.min(first_frame),
            lead_out_frames: if last { 0 } else { lead_out },
        });
        if last {
            return Ok(segments);
        }
    }
}

/// The ffmpeg arguments that encode one audio segment of `input` (a path or a URL) to ADTS:
/// the segment with its lead-in and lead-out, each sample where the single pass has it.
///
/// * It is cut by the source's timestamps (`-copyts`, `atrim`), which name samples
///   ([`AudioStream::timestamps_name_samples`]).
/// * The resampler starts at a whole second, where every integer sample rate has a sample, so
///   its output lies on the single pass's sample grid (which starts at 0); it runs through the
///   lead-in before the first sample kept.
/// * Decoding starts half a second before that: a decoder's first frame after a seek lacks
///   the overlap of the frame before it.
pub fn audio_segment_args(
    profile: &RenditionProfile,
    segment: &AudioSegment,
    input: &OsStr,
    output: &Path,
) -> Vec<OsString> {
    let rate = profile.audio.sample_rate;
    let seconds = |frame: u64| aac_frames_secs(frame, rate);
    let encode_from = segment.first_frame - segment.lead_in_frames.min(segment.first_frame);
    let start = seconds(encode_from);
    let resample_from = start.floor();
    let mut args = ffmpeg_base_args();
    if resample_from > 0.0 {
        args.extend(["-ss".into(), OsString::from(format!("{:.6}", resample_from - 0.5))]);
    }
    args.extend(source_fence(input));
    args.push("-copyts".into());
    args.push("-i".into());
    args.push(input.to_owned());
    let end = segment
        .frames
        .map(|frames| {
            format!(
                ":end={:.6}",
                seconds(segment.first_frame + frames + segment.lead_out_frames)
            )
        })
        .unwrap_or_default();
    let filters = format!(
        "atrim=start={resample_from},{},aresample={rate},atrim=start={start:.6}{end},asetpts=PTS-STARTPTS",
        profile.audio_filters()
    );
    args.extend(["-map", "0:a:0", "-vn", "-af", &filters].map(OsString::from));
    args.extend(profile.audio_codec_args());
    args.extend(["-f", "adts"].map(OsString::from));
    args.push(output.as_os_str().to_owned());
    args
}

/// A segment's own AAC frames out of its encode (ADTS, as [`audio_segment_args`] writes it): the
/// encode's priming frame, lead-in and lead-out are dropped (the first segment keeps its
/// priming frame: it is the single pass's). A segment that is not the last must have made
/// exactly the frames planned; otherwise the source's audio is shorter than probed or has a
/// gap, and the error says so rather than shifting the sound after the join.
pub fn keep_audio_frames(adts: &[u8], segment: &AudioSegment) -> Result<Vec<u8>, String> {
    let frames = adts_frames(adts)?;
    let lead_in = segment.lead_in_frames.min(segment.first_frame) as usize;
    // The encode's own priming frame, then the lead-in.
    let skip = if segment.first_frame > 0 { 1 + lead_in } else { 0 };
    let kept = match segment.frames {
        Some(own) => {
            let own = own as usize;
            let planned = 1 + lead_in + own + segment.lead_out_frames as usize;
            if frames.len() != planned {
                return Err(format!(
                    "the encode made {} AAC frames where {planned} were planned: the source's audio is shorter than probed or has a gap",
                    frames.len()
                ));
            }
            &frames[skip..1 + lead_in + own]
        }
        None if frames.len() > skip => &frames[skip..],
        None => {
            return Err(format!(
                "the encode made {} AAC frames, none after the {skip} it drops: the source's audio ends before this segment",
                frames.len()
            ))
        }
    };
    Ok(kept.concat())
}

/// The frames of an ADTS stream. A parser crate would bring a streaming API for what is two
/// fields of a 7-byte header: the frame's length, and how many AAC frames it holds (ffmpeg's
/// ADTS muxer writes one).
fn adts_frames(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let at = bytes.len() - rest.len();
        // The syncword (12 bits set) and layer 0.
        if rest.len() < 7 || rest[0] != 0xFF || rest[1] & 0xF6 != 0xF0 {
            return Err(format!("the encode is not ADTS at byte {at}"));
        }
        let length = (usize::from(rest[3] & 0x03) << 11) | (usize::from(rest[4]) << 3) | usize::from(rest[5] >> 5);
        let more_than_one = rest[6] & 0x03 != 0;
        if length < 7 || length > rest.len() || more_than_one {
            return Err(format!(
                "the ADTS frame at byte {at} is cut short or holds more than one AAC frame"
            ));
        }
        let (frame, after) = rest.split_at(length);
        frames.push(frame);
        rest = after;
    }
    Ok(frames)
}

/// The ffmpeg arguments that join the appended segments (`video`, MPEG-TS) and the appended
/// audio segments (`audio`, ADTS) into the profile's container by stream copy, timestamps moved
/// back to start at 0. ADTS does not say that its first frame is the encoder's priming, so the
/// audio is moved back by it: the muxer then writes the edit list a single pass writes.
pub fn join_args(profile: &RenditionProfile, video: &Path, audio: Option<&Path>, output: &Path) -> Vec<OsString> {
    let mut args = ffmpeg_base_args();
    args.extend(["-copyts", "-itsoffset", &format!("-{TS_OFFSET_SECS}"), "-i"].map(OsString::from));
    args.push(video.as_os_str().to_owned());
    if let Some(audio) = audio {
        let priming = AAC_PRIMING_SAMPLES as f64 / f64::from(profile.audio.sample_rate);
        args.extend([
            "-itsoffset".into(),
            OsString::from(format!("-{priming:.6}")),
            "-i".into(),
        ]);
        args.push(audio.as_os_str().to_owned());
        args.extend(["-map", "0:v:0", "-map", "1:a:0"].map(OsString::from));
    } else {
        args.extend(["-map", "0:v:0"].map(OsString::from));
    }
    args.extend(["-c", "copy"].map(OsString::from));
    if profile.container.faststart {
        args.extend(["-movflags", "+faststart"].map(OsString::from));
    }
    args.extend(["-f".into(), OsString::from(&profile.container.format)]);
    args.push(output.as_os_str().to_owned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source_fence::is_fenced;

    #[test]
    fn probed_rates_become_exact_ones() {
        let rate = |fps| FrameRate::from_fps(fps).map(|r| (r.num, r.den));
        assert_eq!(rate(30.0), Some((30, 1)));
        assert_eq!(rate(29.97), Some((30000, 1001)));
        assert_eq!(rate(29.970029), Some((30000, 1001)));
        assert_eq!(rate(23.976), Some((24000, 1001)));
        assert_eq!(rate(59.94), Some((60000, 1001)));
        assert_eq!(rate(12.5), Some((12500, 1000)));
        assert_eq!(rate(0.0), None);
        assert_eq!(rate(f64::NAN), None);
    }

    #[test]
    fn segments_are_whole_keyframe_intervals_and_cover_every_frame() {
        let rate = FrameRate { num: 30, den: 1 };
        let plan = SegmentPlan::new(65.0, rate, 2.0, 20.0, 0.0, 0.0);
        assert_eq!(plan.expected_frames, 1950);
        let firsts: Vec<u64> = plan.segments.iter().map(|s| s.first_frame).collect();
        assert_eq!(firsts, [0, 600, 1200, 1800]);
        let intervals: Vec<u64> = plan.segments.iter().map(|s| s.first_keyframe_interval).collect();
        assert_eq!(intervals, [0, 10, 20, 30]);
        let counts: Vec<Option<u64>> = plan.segments.iter().map(|s| s.frames).collect();
        assert_eq!(counts, [Some(600), Some(600), Some(600), None]);
    }

    #[test]
    fn a_tail_shorter_than_one_interval_joins_the_segment_before() {
        let rate = FrameRate { num: 25, den: 1 };
        // 41 s: 20 s, then 21 s (the 1 s tail is not a segment of its own).
        let plan = SegmentPlan::new(41.0, rate, 2.0, 20.0, 0.0, 0.0);
        assert_eq!(plan.segments.len(), 2);
        assert_eq!((plan.segments[1].first_frame, plan.segments[1].frames), (500, None));
        assert_eq!(SegmentPlan::new(21.0, rate, 2.0, 20.0, 0.0, 0.0).segments.len(), 1);
        assert_eq!(SegmentPlan::new(39.0, rate, 2.0, 20.0, 0.0, 0.0).segments.len(), 2);
        assert_eq!(SegmentPlan::new(0.0, rate, 2.0, 20.0, 0.0, 0.0).segments.len(), 1);
    }

    /// The 720p profile's picture for a 640x360 source with sound.
    fn plan_of_a_360p_source() -> RenditionPlan {
        RenditionPlan {
            width: 640,
            height: 360,
            upscale_avoided: true,
            fps_cap: None,
            has_audio: true,
        }
    }

    /// The 720p profile's command for frames 600..1200 (20 s to 40 s at 30 fps) of a 640x360
    /// source, with the given lead-in and lead-out: its output and its arguments as text.
    fn segment_command_of(lead_in_frames: u64, lead_out_frames: u64, input: &str) -> (PathBuf, Vec<String>) {
        let profile = RenditionProfile::built_in("720p").unwrap();
        let plan = plan_of_a_360p_source();
        let segment = Segment {
            index: 1,
            first_frame: 600,
            frames: Some(600),
            first_keyframe_interval: 10,
            lead_in_frames,
            lead_out_frames,
        };
        let rate = FrameRate { num: 30, den: 1 };
        let command = segment_command(&profile, &plan, rate, &segment, OsStr::new(input), Path::new("/tmp/1"));
        let args = command.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        (command.output, args)
    }

    #[test]
    fn every_segment_but_the_first_has_a_lead_in_and_every_one_but_the_last_a_lead_out() {
        let rate = FrameRate { num: 30, den: 1 };
        let plan = SegmentPlan::new(65.0, rate, 2.0, 20.0, 1.0, 0.5);
        let leads: Vec<(u64, u64)> = plan
            .segments
            .iter()
            .map(|s| (s.lead_in_frames, s.lead_out_frames))
            .collect();
        assert_eq!(leads, [(0, 15), (30, 15), (30, 15), (30, 0)]);
        // A lead-out never runs past the next keyframe interval.
        assert_eq!(
            SegmentPlan::new(65.0, rate, 2.0, 20.0, 0.0, 5.0).segments[0].lead_out_frames,
            60
        );
        let ntsc = FrameRate { num: 30000, den: 1001 };
        assert_eq!(
            SegmentPlan::new(65.0, ntsc, 2.0, 20.0, 1.0, 0.5).segments[1].lead_in_frames,
            30
        );
    }

    #[test]
    fn a_lead_in_and_a_lead_out_are_encoded_then_cut_off_at_the_segments_keyframes() {
        let (output, args) = segment_command_of(30, 15, "in.mp4");
        assert_eq!(output, Path::new("/tmp/1/part-1.ts"));
        let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        // from frame 570: seek to frame 569, the fps filter starts at 19 s
        assert_eq!(after("-ss"), "18.966667");
        assert!(after("-vf").starts_with("fps=30/1:start_time=19.000000,"));
        assert_eq!(after("-frames:v"), "645");
        // the first forced keyframe is the segment's first frame, 1 s (30 frames) into the encode
        assert_eq!(after("-force_key_frames"), "expr:gte(t,n_forced*2+0.999999)");
        assert_eq!(after("-f"), "segment");
        assert_eq!(after("-segment_format"), "mpegts");
        // cut after the lead-in, and after the segment's 600 frames
        assert_eq!(after("-segment_frames"), "30,630");
        assert_eq!(args.last().unwrap(), "/tmp/1/part-%d.ts");
    }

    #[test]
    fn every_read_of_the_source_is_fenced_to_its_demuxers_and_its_url_scheme() {
        let profile = RenditionProfile::built_in("720p").unwrap();
        let plan = plan_of_a_360p_source();
        let url = OsString::from("https://bucket.s3.amazonaws.com/k?X-Amz-Signature=1");
        let rate = FrameRate { num: 30, den: 1 };
        for segment in SegmentPlan::new(65.0, rate, 2.0, 20.0, 1.0, 0.5).segments {
            let command = segment_command(&profile, &plan, rate, &segment, &url, Path::new("/tmp/1"));
            assert!(is_fenced(&command.args, &url), "{:?}", command.args);
        }
        for segment in [AudioSegment::whole(), audio_segment(2, Some(100), 47, 24)] {
            let args = audio_segment_args(&profile, &segment, &url, Path::new("/tmp/a.aac"));
            assert!(is_fenced(&args, &url), "{args:?}");
        }
    }

    #[test]
    fn ntsc_boundaries_are_the_first_frame_at_or_after_each_interval() {
        let rate = FrameRate { num: 30000, den: 1001 };
        let plan = SegmentPlan::new(100.0, rate, 2.0, 10.0, 0.0, 0.0);
        // 10 s at 29.97 fps is frame 299.7: the single pass's keyframe is frame 300.
        assert_eq!(plan.segments[1].first_frame, 300);
        assert_eq!(plan.segments[1].first_keyframe_interval, 5);
        assert_eq!(plan.segments[0].frames, Some(300));
        assert_eq!(plan.segments[2].first_frame, 600);
    }

    #[test]
    fn a_segment_seeks_one_frame_early_and_keeps_the_single_pass_clocks() {
        let (output, args) = segment_command_of(0, 0, "https://example/src?X-Amz-Signature=1");
        assert_eq!(output, Path::new("/tmp/1/part-0.ts"));
        let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(after("-ss"), "19.966667");
        assert_eq!(after("-i"), "https://example/src?X-Amz-Signature=1");
        assert_eq!(
            after("-vf"),
            "fps=30/1:start_time=20.000000,scale=640:360:flags=bicubic,setsar=1"
        );
        assert_eq!(after("-frames:v"), "600");
        // t counts from the encode's first frame, which is the segment's first keyframe
        assert_eq!(after("-force_key_frames"), "expr:gte(t,n_forced*2-0.000001)");
        assert_eq!(after("-f"), "mpegts");
        assert!(args.contains(&"-an".to_owned()) && args.contains(&"-copyts".to_owned()));
        assert!(
            args.contains(&"-xerror".to_owned()),
            "a decoding error stops the segment"
        );
        assert!(
            !args.contains(&"-c:a".to_owned()),
            "the audio is encoded in parts of its own"
        );
    }

    fn audio_segment(first_frame: u64, frames: Option<u64>, lead_in_frames: u64, lead_out_frames: u64) -> AudioSegment {
        AudioSegment {
            index: 1,
            first_frame,
            frames,
            lead_in_frames,
            lead_out_frames,
        }
    }

    fn mp4_audio(duration_secs: f64) -> AudioStream {
        AudioStream {
            codec: "aac".into(),
            channels: Some(2),
            sample_rate: Some(44100),
            time_base: Some((1, 44100)),
            start_secs: Some(0.0),
            duration_secs: Some(duration_secs),
        }
    }

    #[test]
    fn audio_is_cut_on_the_aac_frame_grid_with_leads_and_a_tail_joined_to_the_segment_before() {
        let profile = RenditionProfile::built_in("720p").unwrap();
        assert_eq!(profile.audio.sample_rate, 48000);
        // 300 s at 48 kHz is 14,062.5 frames of 1,024 samples: 14,063 per segment.
        let segments = audio_segments(&profile, &mp4_audio(1000.0), 300.0, 1.0, 0.5).unwrap();
        let cuts: Vec<(u64, Option<u64>, u64, u64)> = segments
            .iter()
            .map(|s| (s.first_frame, s.frames, s.lead_in_frames, s.lead_out_frames))
            .collect();
        assert_eq!(
            cuts,
            [
                (0, Some(14063), 0, 24),
                (14063, Some(14063), 47, 24),
                (28126, Some(14063), 47, 24),
                // 1000 s is 46,875 frames: the 100 s tail is long enough to stand alone.
                (42189, None, 47, 0),
            ]
        );
        // A tail of 20 s (under a tenth of a segment) joins the segment before.
        let segments = audio_segments(&profile, &mp4_audio(620.0), 300.0, 1.0, 0.5).unwrap();
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[1].frames, None);
        // Shorter than one segment: one segment, no leads.
        let segments = audio_segments(&profile, &mp4_audio(200.0), 300.0, 1.0, 0.5).unwrap();
        assert_eq!(segments, [AudioSegment::whole()]);
    }

    #[test]
    fn audio_whose_timestamps_do_not_name_samples_is_encoded_whole() {
        let profile = RenditionProfile::built_in("720p").unwrap();
        let matroska = AudioStream {
            time_base: Some((1, 1000)),
            ..mp4_audio(1000.0)
        };
        let why = audio_segments(&profile, &matroska, 300.0, 1.0, 0.5).unwrap_err();
        assert!(why.contains("do not name samples"), "{why}");
        let late = AudioStream {
            start_secs: Some(0.1),
            ..mp4_audio(1000.0)
        };
        assert!(audio_segments(&profile, &late, 300.0, 1.0, 0.5).is_err());
        let no_duration = AudioStream {
            duration_secs: None,
            ..mp4_audio(1000.0)
        };
        assert!(audio_segments(&profile, &no_duration, 300.0, 1.0, 0.5).is_err());
    }

    #[test]
    fn an_audio_segment_is_cut_by_timestamps_after_resampling_from_a_whole_second() {
        let profile = RenditionProfile::built_in("720p").unwrap();
        let args: Vec<String> = audio_segment_args(
            &profile,
            &audio_segment(14063, Some(14063), 47, 24),
            OsStr::new("https://example/src?X-Amz-Signature=1"),
            Path::new("/tmp/a.aac"),
        )
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
        let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        // From frame 14,016 (14,063 - 47): 14,016 × 1,024 / 48,000 = 299.008 s; the resampler
        // starts at 299 s, the decoder half a second before.
        assert_eq!(after("-ss"), "298.500000");
        assert_eq!(
            after("-af"),
            "atrim=start=299,aformat=channel_layouts=mono|stereo,aresample=48000,\
             atrim=start=299.008000:end=600.533333,asetpts=PTS-STARTPTS"
        );
        assert_eq!(after("-map"), "0:a:0");
        assert_eq!(after("-f"), "adts");
        assert!(args.contains(&"-copyts".to_owned()));
        // The whole audio: no seek, no end.
        let args = audio_segment_args(
            &profile,
            &AudioSegment::whole(),
            OsStr::new("in.mp4"),
            Path::new("/tmp/a.aac"),
        );
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(!args.contains(&"-ss".to_owned()));
        assert!(args.contains(
            &"atrim=start=0,aformat=channel_layouts=mono|stereo,aresample=48000,atrim=start=0.000000,asetpts=PTS-STARTPTS"
                .to_owned()
        ));
    }

    /// An ADTS stream of `count` frames whose one payload byte is the frame's number.
    fn adts(count: u8) -> Vec<u8> {
        (0..count)
            .flat_map(|n| {
                let length = 8usize;
                [
                    0xFF,
                    0xF1,
                    0x50,
                    0x80 | ((length >> 11) & 0x03) as u8,
                    ((length >> 3) & 0xFF) as u8,
                    (((length & 0x07) << 5) as u8) | 0x1F,
                    0xFC,
                    n,
                ]
            })
            .collect()
    }

    fn payloads(kept: &[u8]) -> Vec<u8> {
        kept.chunks(8).map(|frame| frame[7]).collect()
    }

    #[test]
    fn a_segment_keeps_its_own_frames_and_the_first_keeps_the_priming() {
        // Priming, 2 lead-in, 3 own, 1 lead-out.
        let kept = keep_audio_frames(&adts(7), &audio_segment(10, Some(3), 2, 1)).unwrap();
        assert_eq!(payloads(&kept), [3, 4, 5]);
        // The first segment: its priming frame is the single pass's.
        let kept = keep_audio_frames(&adts(5), &audio_segment(0, Some(3), 0, 1)).unwrap();
        assert_eq!(payloads(&kept), [0, 1, 2, 3]);
        // The last: everything after the priming and the lead-in.
        let kept = keep_audio_frames(&adts(9), &audio_segment(10, None, 2, 0)).unwrap();
        assert_eq!(payloads(&kept), [3, 4, 5, 6, 7, 8]);
        assert_eq!(keep_audio_frames(&adts(4), &AudioSegment::whole()).unwrap(), adts(4));
    }

    #[test]
    fn an_audio_encode_of_the_wrong_length_or_not_adts_is_refused_by_name() {
        let err = keep_audio_frames(&adts(6), &audio_segment(10, Some(3), 2, 1)).unwrap_err();
        assert!(err.contains("made 6 AAC frames where 7 were planned"), "{err}");
        let err = keep_audio_frames(&adts(3), &audio_segment(10, None, 2, 0)).unwrap_err();
        assert!(err.contains("ends before this segment"), "{err}");
        let mut cut_short = adts(3);
        cut_short.truncate(20);
        assert!(keep_audio_frames(&cut_short, &AudioSegment::whole()).is_err());
        let err = keep_audio_frames(b"ID3\x04 not adts", &AudioSegment::whole()).unwrap_err();
        assert!(err.contains("not ADTS at byte 0"), "{err}");
    }

    #[test]
    fn the_join_moves_the_adts_audio_back_by_its_priming() {
        let profile = RenditionProfile::built_in("720p").unwrap();
        let args: Vec<String> = join_args(
            &profile,
            Path::new("v.ts"),
            Some(Path::new("a.aac")),
            Path::new("o.mp4"),
        )
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
        let offsets: Vec<&String> = args
            .iter()
            .zip(&args[1..])
            .filter(|(flag, _)| *flag == "-itsoffset")
            .map(|(_, value)| value)
            .collect();
        // 1,024 samples at 48 kHz.
        assert_eq!(offsets, ["-10", "-0.021333"]);
    }
}
