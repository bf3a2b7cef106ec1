//! A job's settings → a [`JobPlan`]: the input, and per output group what to render.
//!
//! A job arrives as MediaConvert's wire JSON (lowerCamelCase, as the SDK serialises it). It is
//! read by walking every object and *consuming* the keys the planner honours (`reader`);
//! a key left over is classified by the one settings [`table`]: accepted without local effect
//! (and listed in the job's warnings), or refused with the setting's name in the console's
//! spelling (`Settings.OutputGroups[0].Outputs[1].VideoDescription.CodecSettings.H265Settings.
//! InterlaceMode = TOP_FIELD`), never silently ignored. A value outside what is implemented is
//! refused the same way.
//!
//! The pieces: inputs, groups and outputs here; video in [`super::video`], audio in
//! [`super::audio`], ffmpeg arguments in `render`, job templates and presets in
//! [`super::templates`]. What is implemented, setting by setting: `docs/mediaconvert.md`
//! (generated from the table).
//!
//! | in the job | ffmpeg |
//! |---|---|
//! | `Codec` H_264 / H_265 / AV1 / FRAME_CAPTURE | libx264 / libx265 (`hvc1` tag) / libsvtav1 (preset 8) / mjpeg stills |
//! | `RateControlMode` QVBR + `QvbrQualityLevel` (1–10, unset = 7) | constant quality: `-crf` 37−2q (x264), 42−2q (x265), 63−4q (SVT-AV1) |
//! | `MaxBitrate`, `HrdBufferSize` | capped quality: `-maxrate` with `-bufsize` (2 s when no HRD buffer is given) |
//! | `RateControlMode` CBR / VBR + `Bitrate` (H.264/H.265) | `-b:v` (CBR also `-minrate`/`-maxrate` = bitrate) |
//! | GOP, B-frames, references, profile, level, AQ, entropy, slices, `QualityTuningLevel` | `-g`-like encoder parameters, `-profile`, `-level`, preset fast / medium / slow |
//! | `Width` / `Height` with `ScalingBehavior`, `Crop`, `Position`, `Sharpness`, `AntiAlias` | crop, scale (letterbox, stretch, fit, fill), pad, unsharp filters |
//! | `AacSettings` | `aac` (LC): CBR `-b:a`, VBR `-q:a`, sample rate, 1.0 / 2.0 / 5.1 |
//! | FILE (MP4, RAW), HLS (M3U8), DASH_ISO (MPD), CMAF (CMFC) groups | `mp4` / `image2` / `hls` / `dash` muxers |
//! | `NameModifier`, `Extension`, `Destination` | `<destination><input base name><modifier>.<ext>` |
use serde_json::Value;

use super::audio::{audio_plan, audio_selector};
pub use super::audio::{AudioPlan, AudioSelector};
pub use super::reader::{leaf_settings, Unsupported};
use super::reader::{Node, Result};
pub use super::render::WrittenFile;
use super::table;
use super::video::video_plan;
pub use super::video::{RateControl, Source, VideoCodec, VideoPlan};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    pub name_modifier: String,
    /// `Extension` (FILE groups): replaces `mp4` / `jpg`.
    pub extension: Option<String>,
    /// `MoovPlacement` PROGRESSIVE_DOWNLOAD (MediaConvert's default): the index first.
    pub faststart: bool,
    pub video: Option<VideoPlan>,
    pub audio: Option<AudioPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupKind {
    File,
    /// `single_file`: `SegmentControl` SINGLE_FILE, one `.ts` per variant and byte ranges.
    Hls {
        segment_length: u32,
        single_file: bool,
    },
    /// DASH_ISO (`cmaf` false) or CMAF: fragmented MP4 segments from ffmpeg's dash muxer.
    Dash(DashPlan),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashPlan {
    pub cmaf: bool,
    /// Seconds.
    pub segment_length: u32,
    /// Seconds (`FragmentLength`): fragments within a segment.
    pub fragment_length: Option<u32>,
    /// `SegmentControl` SINGLE_FILE: one file per representation, addressed by byte ranges.
    pub single_file: bool,
    /// `WriteSegmentTimelineInRepresentation`.
    pub timeline: bool,
    /// CMAF `WriteHlsManifest`: HLS playlists over the same segments.
    pub write_hls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    pub kind: GroupKind,
    /// The bucket and key prefix of the destination.
    pub bucket: String,
    pub prefix: String,
    /// Set when the destination names the files (does not end in `/`).
    pub base_name: Option<String>,
    pub outputs: Vec<OutputPlan>,
    /// The input's `InputClippings` (the same for every group).
    pub clipping: Option<Clipping>,
    /// HLS: the transport stream's settings (`M3u8Settings`), one for every variant.
    pub ts: TsOptions,
    /// The input's `VideoSelector.Rotate` (the same for every group).
    pub rotation: Rotation,
}

/// `M3u8Settings` that ffmpeg's mpegts muxer can honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TsOptions {
    pub pmt_pid: Option<u32>,
    /// The video PID; the audio PID follows it (`AudioPids` must agree).
    pub video_pid: Option<u32>,
    pub program_number: Option<u32>,
    pub transport_stream_id: Option<u32>,
    /// The PAT/PMT repetition, in milliseconds.
    pub pat_interval_ms: Option<u32>,
    pub pcr_interval_ms: Option<u32>,
}

fn ts_options(mut m3u8: Node<'_>) -> Result<TsOptions> {
    let pid = |node: &mut Node<'_>, key| node.int(key, 32..=8182).map(|p| p.map(|p| p as u32));
    let pmt_pid = pid(&mut m3u8, "pmtPid")?;
    let video_pid = pid(&mut m3u8, "videoPid")?;
    if let Some(audio_pids) = m3u8.take("audioPids") {
        let first = audio_pids.as_array().and_then(|p| p.first()).and_then(Value::as_u64);
        if first.is_some() && first != video_pid.map(|v| v as u64 + 1) {
            return Err(Unsupported {
                setting: format!("{} = {audio_pids}", m3u8.path_of("audioPids")),
                detail: "ffmpeg's mpegts muxer numbers the audio PID right after VideoPid".into(),
            });
        }
    }
    let program_number = m3u8.int("programNumber", 1..=65535)?.map(|p| p as u32);
    let transport_stream_id = m3u8.int("transportStreamId", 1..=65535)?.map(|p| p as u32);
    // 0 leaves the muxer's own repetition; PAT and PMT go out together, at the shorter interval.
    let pat = m3u8.int("patInterval", 0..=1000)?.filter(|i| *i > 0);
    let pmt = m3u8.int("pmtInterval", 0..=1000)?.filter(|i| *i > 0);
    let pat_interval_ms = pat.into_iter().chain(pmt).min().map(|i| i as u32);
    let pcr_interval_ms = m3u8
        .int("maxPcrInterval", 0..=500)?
        .filter(|i| *i > 0)
        .map(|i| i as u32);
    m3u8.finish()?;
    Ok(TsOptions {
        pmt_pid,
        video_pid,
        program_number,
        transport_stream_id,
        pat_interval_ms,
        pcr_interval_ms,
    })
}

/// A timecode of `InputClippings`, counted from the start (`TimecodeSource` ZEROBASED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timecode {
    pub seconds: u32,
    pub frames: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clipping {
    pub start: Option<Timecode>,
    pub end: Option<Timecode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPlan {
    pub input_bucket: String,
    pub input_key: String,
    pub groups: Vec<GroupPlan>,
    /// Settings accepted without local effect (`Path = value`), for the job's warnings.
    pub accepted: Vec<String>,
    /// The input's `VideoSelector.Rotate`.
    pub rotation: Rotation,
}

impl JobPlan {
    /// The picture size the outputs start from: as displayed (AUTO), or the coded size turned by
    /// the selector's angle.
    pub fn source_size(&self, coded: (u32, u32), displayed: (u32, u32)) -> (u32, u32) {
        match self.rotation {
            Rotation::Auto => displayed,
            Rotation::Fixed(degrees) if degrees % 180 == 90 => (coded.1, coded.0),
            Rotation::Fixed(_) => coded,
        }
    }
}

/// `VideoSelector.Rotate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// From the source's rotation metadata.
    #[default]
    Auto,
    /// Clockwise degrees (0, 90, 180, 270), the metadata ignored.
    Fixed(u32),
}

impl Rotation {
    /// The filter that turns the decoded picture, if any.
    pub(super) fn filter(self) -> Option<&'static str> {
        match self {
            Rotation::Fixed(90) => Some("transpose=clock"),
            Rotation::Fixed(180) => Some("hflip,vflip"),
            Rotation::Fixed(270) => Some("transpose=cclock"),
            _ => None,
        }
    }
}

/// A job as the console exports it (PascalCase, `"Settings": {...}`) → as the SDK sends it
/// (lowerCamelCase), keeping the keys the user chose (selector names, metadata, tags).
pub fn console_to_wire(console: &Value) -> Value {
    fn convert(value: &Value, keys_are_names: bool) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, item)| {
                        let wire_key = if keys_are_names {
                            key.clone()
                        } else {
                            let mut chars = key.chars();
                            chars
                                .next()
                                .map(|first| first.to_lowercase().chain(chars).collect())
                                .unwrap_or_default()
                        };
                        let names_below = !keys_are_names
                            && (table::MAP_SETTINGS.contains(&key.as_str())
                                || ["UserMetadata", "Tags"].contains(&key.as_str()));
                        (wire_key, convert(item, names_below))
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|item| convert(item, false)).collect()),
            other => other.clone(),
        }
    }
    convert(console, false)
}

/// `s3://bucket/key` → (bucket, key).
pub fn split_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}

/// Reads a CreateJob request body into a plan, or names the first setting it cannot honour.
pub fn plan(request: &Value) -> Result<JobPlan> {
    let mut job = Node::root(request)?;
    // Request fields the service itself acts on (the rest is classified by the table).
    for key in [
        "role",
        "queue",
        "userMetadata",
        "clientRequestToken",
        "tags",
        "jobTemplate",
    ] {
        job.take(key);
    }
    job.one_of(
        "statusUpdateInterval",
        &[
            "SECONDS_10",
            "SECONDS_12",
            "SECONDS_15",
            "SECONDS_20",
            "SECONDS_30",
            "SECONDS_60",
            "SECONDS_120",
            "SECONDS_180",
            "SECONDS_240",
            "SECONDS_300",
            "SECONDS_360",
            "SECONDS_420",
            "SECONDS_480",
            "SECONDS_540",
            "SECONDS_600",
        ],
    )?;
    let mut settings = job
        .object("settings")?
        .ok_or_else(|| job.refuse("settings", "is required"))?;
    let inputs = settings.array("inputs")?;
    if inputs.len() != 1 {
        return Err(settings.refuse(
            "inputs",
            format!("exactly one input is implemented, found {}", inputs.len()),
        ));
    }
    let mut selectors = Vec::new();
    let mut input_uri = None;
    let mut clipping = None;
    let mut rotation = Rotation::Auto;
    for mut input in inputs {
        input_uri = input.string("fileInput")?;
        input_uri = Some(input.required("fileInput", input_uri)?);
        if let Some(mut audio_selectors) = input.object("audioSelectors")? {
            let map = audio_selectors.map;
            for name in map.keys() {
                let selector = audio_selectors.object(name)?.expect("the key was just listed");
                selectors.push(audio_selector(name, selector)?);
            }
            audio_selectors.finish()?;
        }
        if let Some(mut video_selector) = input.object("videoSelector")? {
            // AUTO: upright from the rotation metadata (what ffmpeg does by default); the others
            // ignore the metadata and turn the picture clockwise by the given angle.
            rotation = match video_selector.one_of(
                "rotate",
                &["AUTO", "DEGREE_0", "DEGREES_90", "DEGREES_180", "DEGREES_270"],
            )? {
                Some("DEGREE_0") => Rotation::Fixed(0),
                Some("DEGREES_90") => Rotation::Fixed(90),
                Some("DEGREES_180") => Rotation::Fixed(180),
                Some("DEGREES_270") => Rotation::Fixed(270),
                _ => Rotation::Auto,
            };
            video_selector.finish()?;
        }
        let timecode_source = input.one_of("timecodeSource", &["ZEROBASED", "EMBEDDED", "SPECIFIEDSTART"])?;
        let clippings = input.array("inputClippings")?;
        if clippings.len() > 1 {
            return Err(input.refuse("inputClippings", "one clipping per input is implemented"));
        }
        if !clippings.is_empty() && timecode_source.is_some_and(|t| t != "ZEROBASED") {
            return Err(Unsupported {
                setting: format!(
                    "{} = {}",
                    input.path_of("timecodeSource"),
                    timecode_source.unwrap_or_default()
                ),
                detail: "InputClippings are implemented with TimecodeSource ZEROBASED (counted from the start)".into(),
            });
        }
        for mut clip in clippings {
            let start = clip
                .string("startTimecode")?
                .map(|t| timecode(&clip, "startTimecode", t))
                .transpose()?;
            let end = clip
                .string("endTimecode")?
                .map(|t| timecode(&clip, "endTimecode", t))
                .transpose()?;
            clip.finish()?;
            clipping = Some(Clipping { start, end });
        }
        input.finish()?;
    }
    let input_uri = input_uri.expect("one input, checked above");
    let (input_bucket, input_key) = split_s3_uri(input_uri)
        .filter(|(_, key)| !key.is_empty())
        .ok_or_else(|| Unsupported {
            setting: "Settings.Inputs[0].FileInput".into(),
            detail: format!("{input_uri:?} is not s3://bucket/key"),
        })?;

    let mut groups = Vec::new();
    for group in settings.array("outputGroups")? {
        let mut group = group_plan(group, &selectors)?;
        group.clipping = clipping;
        group.rotation = rotation;
        groups.push(group);
    }
    if groups.is_empty() {
        return Err(settings.refuse("outputGroups", "at least one output group is required"));
    }
    settings.finish()?;
    let ledger = job.accepted.clone();
    job.finish()?;
    let ledger = ledger.borrow();
    if let Some(setting) = ledger.unlisted_reads.first() {
        return Err(Unsupported {
            setting: setting.clone(),
            detail: "read by the local MediaConvert but not listed as honoured in its settings table (a defect of the service: please report it)".into(),
        });
    }
    let accepted = ledger.accepted.clone();
    Ok(JobPlan {
        input_bucket,
        input_key,
        groups,
        accepted,
        rotation,
    })
}

/// `HH:MM:SS:FF` (or `;FF`, drop-frame) → its parts, checked.
fn timecode(node: &Node<'_>, key: &str, text: &str) -> Result<Timecode> {
    let parts: Vec<u32> = text
        .split([':', ';'])
        .map(|p| p.parse::<u32>().ok().filter(|_| p.len() == 2))
        .collect::<Option<Vec<u32>>>()
        .unwrap_or_default();
    match parts.as_slice() {
        [h, m, s, f] if *m < 60 && *s < 60 => Ok(Timecode {
            seconds: h * 3600 + m * 60 + s,
            frames: *f,
        }),
        _ => Err(Unsupported {
            setting: format!("{} = {text}", node.path_of(key)),
            detail: "expected a timecode HH:MM:SS:FF".into(),
        }),
    }
}

fn group_plan(mut group: Node<'_>, selectors: &[AudioSelector]) -> Result<GroupPlan> {
    let mut settings = group
        .object("outputGroupSettings")?
        .ok_or_else(|| group.refuse("outputGroupSettings", "is required"))?;
    let kind = settings.one_of(
        "type",
        &[
            "FILE_GROUP_SETTINGS",
            "HLS_GROUP_SETTINGS",
            "DASH_ISO_GROUP_SETTINGS",
            "CMAF_GROUP_SETTINGS",
        ],
    )?;
    let (kind, destination) = match kind {
        Some(dash @ ("DASH_ISO_GROUP_SETTINGS" | "CMAF_GROUP_SETTINGS")) => {
            let cmaf = dash == "CMAF_GROUP_SETTINGS";
            let key = if cmaf {
                "cmafGroupSettings"
            } else {
                "dashIsoGroupSettings"
            };
            let mut group_settings = settings
                .object(key)?
                .ok_or_else(|| settings.refuse(key, "is required"))?;
            let destination = group_settings.string("destination")?;
            let destination = group_settings.required("destination", destination)?;
            // MediaConvert's defaults: 30 s DASH segments, 10 s CMAF segments, 2 s fragments.
            let segment_length = group_settings
                .int("segmentLength", 1..=600)?
                .unwrap_or(if cmaf { 10 } else { 30 }) as u32;
            let fragment_length = Some(group_settings.int("fragmentLength", 1..=600)?.unwrap_or(2) as u32);
            let single_file =
                group_settings.one_of("segmentControl", &["SEGMENTED_FILES", "SINGLE_FILE"])? == Some("SINGLE_FILE");
            let timeline = group_settings.one_of("writeSegmentTimelineInRepresentation", &["ENABLED", "DISABLED"])?
                != Some("DISABLED");
            group_settings.one_of("mpdProfile", &["MAIN_PROFILE"])?;
            let mut write_hls = false;
            if cmaf {
                group_settings.one_of("writeDashManifest", &["ENABLED"])?;
                write_hls = group_settings.one_of("writeHlsManifest", &["ENABLED", "DISABLED"])? != Some("DISABLED");
                group_settings.one_of("streamInfResolution", &["INCLUDE"])?;
            }
            group_settings.finish()?;
            (
                GroupKind::Dash(DashPlan {
                    cmaf,
                    segment_length,
                    fragment_length,
                    single_file,
                    timeline,
                    write_hls,
                }),
                (destination, settings.path_of(key)),
            )
        }
        Some("FILE_GROUP_SETTINGS") => {
            let mut file = settings
                .object("fileGroupSettings")?
                .ok_or_else(|| settings.refuse("fileGroupSettings", "is required"))?;
            let destination = file.string("destination")?;
            let destination = file.required("destination", destination)?;
            file.finish()?;
            (GroupKind::File, (destination, settings.path_of("fileGroupSettings")))
        }
        Some(_) => {
            let mut hls = settings
                .object("hlsGroupSettings")?
                .ok_or_else(|| settings.refuse("hlsGroupSettings", "is required"))?;
            let destination = hls.string("destination")?;
            let destination = hls.required("destination", destination)?;
            let segment_length = hls.int("segmentLength", 1..=60)?.unwrap_or(10) as u32;
            hls.int("minSegmentLength", 0..=0)?;
            // What ffmpeg's HLS muxer writes: one folder, segments (or one file per variant,
            // addressed by byte ranges) and playlists, RESOLUTION in the master playlist.
            let single_file = hls.one_of("segmentControl", &["SEGMENTED_FILES", "SINGLE_FILE"])? == Some("SINGLE_FILE");
            hls.one_of("directoryStructure", &["SINGLE_DIRECTORY"])?;
            hls.one_of("outputSelection", &["MANIFESTS_AND_SEGMENTS"])?;
            hls.one_of("streamInfResolution", &["INCLUDE"])?;
            hls.finish()?;
            (
                GroupKind::Hls {
                    segment_length,
                    single_file,
                },
                (destination, settings.path_of("hlsGroupSettings")),
            )
        }
        None => return Err(settings.refuse("type", "is required")),
    };
    settings.finish()?;
    let (destination, destination_path) = destination;
    let (bucket, key) = split_s3_uri(destination).ok_or_else(|| Unsupported {
        setting: format!("{destination_path}.Destination"),
        detail: format!("{destination:?} is not an s3:// destination"),
    })?;
    let (prefix, base_name) = match key.rsplit_once('/') {
        _ if key.is_empty() || key.ends_with('/') => (key, None),
        Some((folder, name)) => (format!("{folder}/"), Some(name.to_owned())),
        None => (String::new(), Some(key)),
    };

    let mut outputs = Vec::new();
    let mut ts = None;
    for (index, output) in group.array("outputs")?.into_iter().enumerate() {
        let path = output.path.clone();
        let (output, output_ts) = output_plan(output, &kind, selectors)?;
        match ts {
            None => ts = Some(output_ts),
            // ffmpeg's HLS muxer writes every variant with one transport-stream configuration.
            Some(first) if first != output_ts => {
                return Err(Unsupported {
                    setting: format!("{path}.ContainerSettings.M3u8Settings"),
                    detail: format!(
                        "differs from Outputs[0]'s; the local MediaConvert writes one transport-stream setup per group (output {index})"
                    ),
                })
            }
            Some(_) => {}
        }
        outputs.push(output);
    }
    if outputs.is_empty() {
        return Err(group.refuse("outputs", "at least one output is required"));
    }
    let mut modifiers: Vec<(&str, Option<&str>)> = outputs
        .iter()
        .map(|o| (o.name_modifier.as_str(), o.extension.as_deref()))
        .collect();
    modifiers.sort_unstable();
    if modifiers.windows(2).any(|w| w[0] == w[1]) {
        return Err(group.refuse(
            "outputs",
            "two outputs would write the same file: give each a distinct NameModifier",
        ));
    }
    group.finish()?;
    Ok(GroupPlan {
        kind,
        bucket,
        prefix,
        base_name,
        outputs,
        clipping: None,
        ts: ts.unwrap_or_default(),
        rotation: Rotation::Auto,
    })
}

/// An output, and its `M3u8Settings` (HLS).
fn output_plan(mut output: Node<'_>, kind: &GroupKind, selectors: &[AudioSelector]) -> Result<(OutputPlan, TsOptions)> {
    let name_modifier = output.string("nameModifier")?.unwrap_or("").to_owned();
    if matches!(kind, GroupKind::Hls { .. }) && name_modifier.is_empty() {
        return Err(output.refuse("nameModifier", "HLS outputs need one (it names the variant playlist)"));
    }
    let is_dash = matches!(kind, GroupKind::Dash(_));
    let extension = output.string("extension")?.map(str::to_owned);
    if extension.is_some() && *kind != GroupKind::File {
        return Err(output.refuse(
            "extension",
            "only FILE_GROUP_SETTINGS outputs take an Extension locally",
        ));
    }
    let containers: &[&str] = match kind {
        GroupKind::File => &["MP4", "RAW"],
        GroupKind::Hls { .. } => &["M3U8"],
        GroupKind::Dash(DashPlan { cmaf: false, .. }) => &["MPD"],
        GroupKind::Dash(DashPlan { cmaf: true, .. }) => &["CMFC"],
    };
    let mut container_name = None;
    let mut faststart = true;
    let mut ts = TsOptions::default();
    if let Some(mut container) = output.object("containerSettings")? {
        container_name = container.one_of("container", containers)?;
        if let Some(mut mp4) = container.object("mp4Settings")? {
            faststart = mp4.one_of("moovPlacement", &["PROGRESSIVE_DOWNLOAD", "NORMAL"])? != Some("NORMAL");
            mp4.finish()?;
        }
        if let Some(m3u8) = container.object("m3u8Settings")? {
            ts = ts_options(m3u8)?;
        }
        container.finish()?;
    } else if matches!(kind, GroupKind::File) {
        return Err(output.refuse("containerSettings", "is required (Container MP4)"));
    }
    if let Some(mut output_settings) = output.object("outputSettings")? {
        if let Some(hls) = output_settings.object("hlsSettings")? {
            hls.finish()?;
        }
        output_settings.finish()?;
    }
    let video = output.object("videoDescription")?.map(video_plan).transpose()?;
    let is_capture = video.as_ref().is_some_and(|v| v.codec == VideoCodec::FrameCapture);
    if is_capture != (container_name == Some("RAW")) {
        return Err(output.refuse(
            "containerSettings",
            "Container RAW goes with Codec FRAME_CAPTURE, and FRAME_CAPTURE with RAW",
        ));
    }
    let mut audio_descriptions = output.array("audioDescriptions")?;
    if audio_descriptions.len() > 1 {
        return Err(output.refuse(
            "audioDescriptions",
            "at most one audio description per output is implemented",
        ));
    }
    if is_capture && !audio_descriptions.is_empty() {
        return Err(output.refuse("audioDescriptions", "frame captures have no audio"));
    }
    let audio = audio_descriptions.pop().map(|a| audio_plan(a, selectors)).transpose()?;
    match (&video, &audio) {
        (None, Some(_)) if is_dash => {}
        (None, _) => {
            return Err(output.refuse(
                "videoDescription",
                "audio-only outputs are implemented in DASH and CMAF groups only",
            ))
        }
        _ => {}
    }
    output.finish()?;
    Ok((
        OutputPlan {
            name_modifier,
            extension,
            faststart,
            video,
            audio,
        },
        ts,
    ))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use super::*;
    use serde_json::json;

    /// Seed 001's job as the SDK sends it (lowerCamelCase wire names).
    fn seed_job() -> Value {
        json!({
            "clientRequestToken": "t",
            "queue": "arn:aws:mediaconvert:us-east-1:000000000000:queues/Default",
            "role": "arn:aws:iam::000000000000:role/mc",
            "userMetadata": {"sourceKey": "in/my cat.mp4"},
            "statusUpdateInterval": "SECONDS_60",
            "priority": 0,
            "accelerationSettings": {"mode": "DISABLED"},
            "settings": {
                "timecodeConfig": {"source": "ZEROBASED"},
                "inputs": [{
                    "audioSelectors": {"Audio Selector 1": {"defaultSelection": "DEFAULT"}},
                    "videoSelector": {},
                    "timecodeSource": "ZEROBASED",
                    "fileInput": "s3://src/in/my cat.mp4"
                }],
                "outputGroups": [{
                    "name": "File Group",
                    "outputGroupSettings": {"type": "FILE_GROUP_SETTINGS",
                        "fileGroupSettings": {"destination": "s3://out/mediaconvert/in/"}},
                    "outputs": [
                        {"containerSettings": {"container": "MP4", "mp4Settings": {}},
                         "videoDescription": {"codecSettings": {"codec": "H_265", "h265Settings": {
                             "maxBitrate": 5000000, "rateControlMode": "QVBR", "sceneChangeDetect": "TRANSITION_DETECTION"}}},
                         "audioDescriptions": [{"audioSourceName": "Audio Selector 1", "codecSettings": {"codec": "AAC",
                             "aacSettings": {"bitrate": 96000, "codingMode": "CODING_MODE_2_0", "sampleRate": 48000}}}],
                         "nameModifier": "-hd"},
                        {"containerSettings": {"container": "MP4", "mp4Settings": {}},
                         "videoDescription": {"width": 256, "height": 144, "codecSettings": {"codec": "AV1", "av1Settings": {
                             "rateControlMode": "QVBR", "qvbrSettings": {}, "maxBitrate": 100000}}},
                         "audioDescriptions": [{"codecSettings": {"codec": "AAC",
                             "aacSettings": {"bitrate": 96000, "codingMode": "CODING_MODE_2_0", "sampleRate": 48000}}}],
                         "nameModifier": "-sd"}
                    ]
                }]
            }
        })
    }

    const HD_SOURCE: Source = Source {
        width: 1920,
        height: 1080,
        has_audio: true,
        fps: 25.0,
    };

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    /// The value after the `n`-th occurrence of `flag`.
    fn after(args: &[String], flag: &str, n: usize) -> String {
        let positions: Vec<_> = args
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == flag)
            .map(|(i, _)| i)
            .collect();
        let at = *positions
            .get(n)
            .unwrap_or_else(|| panic!("{flag} #{n} missing in {args:?}"));
        args[at + 1].clone()
    }

    #[test]
    fn the_seed_job_is_planned_exactly() {
        let plan = plan(&seed_job()).unwrap();
        assert_eq!(
            (plan.input_bucket.as_str(), plan.input_key.as_str()),
            ("src", "in/my cat.mp4")
        );
        let group = &plan.groups[0];
        assert_eq!(group.kind, GroupKind::File);
        assert_eq!(
            (group.bucket.as_str(), group.prefix.as_str(), group.base_name.as_deref()),
            ("out", "mediaconvert/in/", None)
        );
        let hd = group.outputs[0].video.as_ref().unwrap();
        assert_eq!(hd.codec, VideoCodec::H265);
        assert_eq!(
            hd.rate,
            RateControl::Qvbr {
                level: 7,
                max_bitrate: Some(5_000_000)
            }
        );
        assert_eq!((hd.width, hd.height), (None, None));
        let sd = group.outputs[1].video.as_ref().unwrap();
        assert_eq!((sd.codec, sd.width, sd.height), (VideoCodec::Av1, Some(256), Some(144)));
        assert_eq!(
            group.outputs[1].audio,
            Some(AudioPlan {
                bitrate: 96_000,
                sample_rate: 48_000,
                channels: 2,
                ..AudioPlan::stereo(0)
            })
        );
    }

    #[test]
    fn the_seed_job_maps_to_one_ffmpeg_run_with_both_outputs() {
        let plan = plan(&seed_job()).unwrap();
        let group = &plan.groups[0];
        let base = group.base_name(&plan.input_key);
        assert_eq!(base, "my cat");
        let (args, files) = group.ffmpeg_args(Path::new("/w/source"), &HD_SOURCE, Path::new("/w/out"), &base);
        let args = strings(&args);
        assert_eq!(
            args.iter().filter(|a| *a == "-i").count(),
            1,
            "the input is decoded once"
        );
        // Fenced like the functions' sources: a local file, read as an inline container.
        let input = args.iter().position(|a| a == "-i").unwrap();
        assert!(args.iter().position(|a| a == "-format_whitelist").unwrap() < input);
        assert_eq!(
            after(&args, "-format_whitelist", 0),
            shared::source_fence::SOURCE_FORMATS
        );
        assert_eq!(after(&args, "-protocol_whitelist", 0), "file");
        assert_eq!(after(&args, "-c:v", 0), "libx265");
        assert_eq!(after(&args, "-crf:v", 0), "28");
        assert_eq!(after(&args, "-maxrate:v", 0), "5000000");
        assert_eq!(after(&args, "-tag:v", 0), "hvc1");
        assert_eq!(after(&args, "-vf", 0), "scale=1920:1080,setsar=1");
        assert_eq!(after(&args, "-c:v", 1), "libsvtav1");
        assert_eq!(after(&args, "-crf:v", 1), "35");
        assert_eq!(after(&args, "-maxrate:v", 1), "100000");
        assert!(after(&args, "-vf", 1).starts_with("scale=256:144:force_original_aspect_ratio=decrease"));
        for n in 0..2 {
            assert_eq!(after(&args, "-c:a", n), "aac");
            assert_eq!(after(&args, "-b:a", n), "96000");
            assert_eq!(after(&args, "-ar:a", n), "48000");
            assert_eq!(after(&args, "-ac:a", n), "2");
            assert_eq!(after(&args, "-f", n), "mp4");
        }
        assert!(args.contains(&"/w/out/my cat-hd.mp4".to_owned()));
        assert_eq!(args.last().unwrap(), "/w/out/my cat-sd.mp4");
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["my cat-hd.mp4", "my cat-sd.mp4"]);
    }

    #[test]
    fn quality_levels_bitrate_modes_and_scene_detection_map_to_encoder_options() {
        let mut job = seed_job();
        let h265 = &mut job["settings"]["outputGroups"][0]["outputs"][0]["videoDescription"]["codecSettings"];
        *h265 = json!({"codec": "H_264", "h264Settings": {"rateControlMode": "QVBR", "qvbrSettings": {"qvbrQualityLevel": 9},
            "sceneChangeDetect": "DISABLED"}});
        let plan = plan(&job).unwrap();
        let (args, _) = plan.groups[0].ffmpeg_args(Path::new("in"), &HD_SOURCE, Path::new("out"), "b");
        let args = strings(&args);
        assert_eq!(after(&args, "-c:v", 0), "libx264");
        assert_eq!(after(&args, "-crf:v", 0), "19");
        assert_eq!(after(&args, "-sc_threshold:v", 0), "0");
        assert_eq!(
            args.iter().filter(|a| *a == "-maxrate:v").count(),
            1,
            "no cap without MaxBitrate"
        );

        let cbr = RateControl::Cbr { bitrate: 2_000_000 };
        let video = VideoPlan {
            scene_change_detect: false,
            ..VideoPlan::basic(VideoCodec::H265, Some(1280), None, cbr)
        };
        let args = video.encoder_args(":v", None, &HD_SOURCE);
        assert_eq!(after(&args, "-b:v", 0), "2000000");
        assert_eq!(after(&args, "-maxrate:v", 0), "2000000");
        assert_eq!(after(&args, "-x265-params:v", 0), "log-level=error:scenecut=0");
        assert_eq!(video.output_size(&HD_SOURCE), (1280, 720));
        let portrait = Source {
            width: 1080,
            height: 1920,
            has_audio: false,
            fps: 30.0,
        };
        assert_eq!(
            VideoPlan {
                width: None,
                height: Some(640),
                ..video.clone()
            }
            .output_size(&portrait),
            (360, 640)
        );
    }

    #[test]
    fn a_source_without_audio_gives_outputs_without_audio() {
        let plan = plan(&seed_job()).unwrap();
        let silent = Source {
            has_audio: false,
            ..HD_SOURCE
        };
        let (args, _) = plan.groups[0].ffmpeg_args(Path::new("in"), &silent, Path::new("out"), "b");
        let args = strings(&args);
        assert!(!args.iter().any(|a| a == "0:a:0"));
        assert_eq!(args.iter().filter(|a| *a == "-an").count(), 2);
    }

    fn hls_job() -> Value {
        let mut job = seed_job();
        let output = |modifier: &str, w: u32, h: u32| {
            json!({
                "nameModifier": modifier,
                "containerSettings": {"container": "M3U8", "m3u8Settings": {}},
                "outputSettings": {"hlsSettings": {}},
                "videoDescription": {"width": w, "height": h, "codecSettings": {"codec": "H_264", "h264Settings": {
                    "rateControlMode": "QVBR", "maxBitrate": 1000000, "qvbrSettings": {"qvbrQualityLevel": 7}}}},
                "audioDescriptions": [{"audioSourceName": "Audio Selector 1", "codecSettings": {"codec": "AAC",
                    "aacSettings": {"bitrate": 96000, "codingMode": "CODING_MODE_2_0", "sampleRate": 48000}}}]
            })
        };
        job["settings"]["outputGroups"] = json!([{
            "name": "Apple HLS",
            "outputGroupSettings": {"type": "HLS_GROUP_SETTINGS", "hlsGroupSettings": {
                "destination": "s3://out/mediaconvert/in/hls/", "segmentLength": 6, "minSegmentLength": 0}},
            "outputs": [output("_360p", 640, 360), output("_720p", 1280, 720)]
        }]);
        job
    }

    #[test]
    fn an_hls_group_is_one_run_with_a_variant_per_output_and_a_master_playlist() {
        let plan = plan(&hls_job()).unwrap();
        let group = &plan.groups[0];
        assert_eq!(
            group.kind,
            GroupKind::Hls {
                segment_length: 6,
                single_file: false
            }
        );
        let (args, files) = group.ffmpeg_args(Path::new("in"), &HD_SOURCE, Path::new("/o"), "my cat");
        let args = strings(&args);
        assert_eq!(
            after(&args, "-var_stream_map", 0),
            "v:0,a:0,name:_360p v:1,a:1,name:_720p"
        );
        assert_eq!(after(&args, "-master_pl_name", 0), "my cat.m3u8");
        assert_eq!(after(&args, "-hls_time", 0), "6");
        assert_eq!(after(&args, "-force_key_frames:v:1", 0), "expr:gte(t,n_forced*6)");
        assert!(after(&args, "-filter:v:1", 0).starts_with("scale=1280:720"));
        assert_eq!(after(&args, "-hls_segment_filename", 0), "/o/my cat%v_%05d.ts");
        assert_eq!(args.last().unwrap(), "/o/my cat%v.m3u8");
        let names: Vec<_> = files.iter().map(|f| (f.name.as_str(), f.output)).collect();
        assert_eq!(
            names,
            [
                ("my cat.m3u8", None),
                ("my cat_360p.m3u8", Some(0)),
                ("my cat_720p.m3u8", Some(1))
            ]
        );
    }

    #[test]
    fn a_cmaf_group_is_one_dash_muxer_run_with_hls_playlists_and_an_audio_only_output() {
        let mut job = hls_job();
        let group = &mut job["settings"]["outputGroups"][0];
        group["outputGroupSettings"] = json!({"type": "CMAF_GROUP_SETTINGS", "cmafGroupSettings": {
            "destination": "s3://out/cmaf/", "segmentLength": 4, "fragmentLength": 2, "segmentControl": "SINGLE_FILE",
            "writeHlsManifest": "ENABLED", "writeDashManifest": "ENABLED",
            "writeSegmentTimelineInRepresentation": "DISABLED"}});
        for output in group["outputs"].as_array_mut().unwrap() {
            output["containerSettings"] = json!({"container": "CMFC"});
            output.as_object_mut().unwrap().remove("outputSettings");
            output.as_object_mut().unwrap().remove("audioDescriptions");
        }
        let audio_only = json!({"nameModifier": "_audio", "containerSettings": {"container": "CMFC"},
            "audioDescriptions": [{"codecSettings": {"codec": "AAC", "aacSettings": {"bitrate": 128000}}}]});
        group["outputs"].as_array_mut().unwrap().push(audio_only);
        let plan = plan(&job).unwrap();
        let group = &plan.groups[0];
        let (args, files) = group.ffmpeg_args(Path::new("in"), &HD_SOURCE, Path::new("/o"), "b");
        let args = strings(&args);
        assert_eq!(after(&args, "-f", 0), "dash");
        assert_eq!(after(&args, "-seg_duration", 0), "4");
        assert_eq!(after(&args, "-frag_duration", 0), "2");
        assert_eq!(after(&args, "-use_timeline", 0), "0");
        assert_eq!(after(&args, "-single_file", 0), "1");
        assert_eq!(after(&args, "-hls_master_name", 0), "b.m3u8");
        assert_eq!(after(&args, "-adaptation_sets", 0), "id=0,streams=v id=1,streams=a");
        assert_eq!(after(&args, "-c:a:0", 0), "aac");
        assert_eq!(after(&args, "-force_key_frames:v:1", 0), "expr:gte(t,n_forced*4)");
        assert_eq!(args.last().unwrap(), "/o/b.mpd");
        let masters: Vec<_> = files
            .iter()
            .filter(|f| f.output.is_none())
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(masters, ["b.mpd", "b.m3u8"]);
        assert_eq!(files.iter().filter(|f| f.output.is_some()).count(), 3);

        let mut no_audio_here = job.clone();
        no_audio_here["settings"]["outputGroups"][0]["outputGroupSettings"] =
            json!({"type": "FILE_GROUP_SETTINGS", "fileGroupSettings": {"destination": "s3://out/f/"}});
        assert_eq!(
            plan_err(&no_audio_here),
            "Settings.OutputGroups[0].Outputs[0].ContainerSettings.Container = CMFC"
        );
    }

    fn plan_err(job: &Value) -> String {
        plan(job).unwrap_err().setting
    }

    #[test]
    fn an_hls_group_of_single_files_writes_one_ts_per_variant() {
        let mut job = hls_job();
        job["settings"]["outputGroups"][0]["outputGroupSettings"]["hlsGroupSettings"]["segmentControl"] =
            json!("SINGLE_FILE");
        let planned = plan(&job).unwrap();
        let (args, _) = planned.groups[0].ffmpeg_args(Path::new("in"), &HD_SOURCE, Path::new("/o"), "b");
        let args = strings(&args);
        assert_eq!(after(&args, "-hls_flags", 0), "independent_segments+single_file");
        assert_eq!(after(&args, "-hls_segment_filename", 0), "/o/b%v.ts");
    }

    #[test]
    fn m3u8_settings_set_the_transport_stream_of_every_variant() {
        let mut job = hls_job();
        let m3u8 = json!({"container": "M3U8", "m3u8Settings": {"pmtPid": 480, "videoPid": 481, "audioPids": [482, 483],
            "programNumber": 7, "transportStreamId": 9, "patInterval": 100, "pmtInterval": 50, "maxPcrInterval": 40,
            "audioFramesPerPes": 4}});
        for output in job["settings"]["outputGroups"][0]["outputs"].as_array_mut().unwrap() {
            output["containerSettings"] = m3u8.clone();
        }
        let planned = plan(&job).unwrap();
        let (args, _) = planned.groups[0].ffmpeg_args(Path::new("in"), &HD_SOURCE, Path::new("/o"), "b");
        assert_eq!(
            after(&strings(&args), "-hls_segment_options", 0),
            "mpegts_pmt_start_pid=480:mpegts_start_pid=481:mpegts_service_id=7:mpegts_transport_stream_id=9:pat_period=0.050:pcr_period=40"
        );
        assert!(planned
            .accepted
            .iter()
            .any(|a| a.ends_with("M3u8Settings.AudioFramesPerPes = 4")));

        let mut differing = job.clone();
        differing["settings"]["outputGroups"][0]["outputs"][1]["containerSettings"]["m3u8Settings"]["videoPid"] =
            json!(600);
        differing["settings"]["outputGroups"][0]["outputs"][1]["containerSettings"]["m3u8Settings"]["audioPids"] =
            json!([601]);
        assert_eq!(
            plan_err(&differing),
            "Settings.OutputGroups[0].Outputs[1].ContainerSettings.M3u8Settings"
        );
        let mut apart = job;
        apart["settings"]["outputGroups"][0]["outputs"][0]["containerSettings"]["m3u8Settings"]["audioPids"] =
            json!([490]);
        assert_eq!(
            plan_err(&apart),
            "Settings.OutputGroups[0].Outputs[0].ContainerSettings.M3u8Settings.AudioPids = [490]"
        );
    }

    #[test]
    fn every_unimplemented_setting_is_refused_by_name() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "/settings/outputGroups/0/outputs/0/videoDescription/codecSettings/h265Settings/interlaceMode",
                json!("TOP_FIELD"),
                "Settings.OutputGroups[0].Outputs[0].VideoDescription.CodecSettings.H265Settings.InterlaceMode = TOP_FIELD",
            ),
            (
                "/settings/outputGroups/0/outputs/0/videoDescription/codecSettings/h265Settings/bandwidthReductionFilter",
                json!({"strength": "HIGH"}),
                "Settings.OutputGroups[0].Outputs[0].VideoDescription.CodecSettings.H265Settings.BandwidthReductionFilter.Strength",
            ),
            (
                "/settings/outputGroups/0/outputs/1/videoDescription/codecSettings/codec",
                json!("VP9"),
                "Settings.OutputGroups[0].Outputs[1].VideoDescription.CodecSettings.Codec = VP9",
            ),
            (
                "/settings/outputGroups/0/outputs/0/containerSettings/container",
                json!("MOV"),
                "Settings.OutputGroups[0].Outputs[0].ContainerSettings.Container = MOV",
            ),
            (
                "/settings/inputs/0/videoSelector/padVideo",
                json!("BLACK"),
                "Settings.Inputs[0].VideoSelector.PadVideo = BLACK",
            ),
            ("/settings/adAvailOffset", json!(0), "Settings.AdAvailOffset"),
            ("/hopDestinations", json!([{"waitMinutes": 5}]), "HopDestinations[0].WaitMinutes"),
            (
                "/settings/inputs/0/denoiseFilter",
                json!("ENABLED"),
                "Settings.Inputs[0].DenoiseFilter = ENABLED",
            ),
            (
                "/settings/outputGroups/0/outputs/0/captionDescriptions",
                json!([{"captionSelectorName": "Captions Selector 1"}]),
                "Settings.OutputGroups[0].Outputs[0].CaptionDescriptions[0].CaptionSelectorName",
            ),
            (
                "/settings/outputGroups/0/outputs/0/audioDescriptions/0/codecSettings/aacSettings/codecProfile",
                json!("HEV1"),
                "Settings.OutputGroups[0].Outputs[0].AudioDescriptions[0].CodecSettings.AacSettings.CodecProfile = HEV1",
            ),
        ];
        for (pointer, value, named) in cases {
            let mut job = seed_job();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            job.pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(key.to_owned(), value);
            let err = plan(&job).unwrap_err();
            assert_eq!(err.setting, named, "{pointer}: {err}");
            assert!(err.to_string().starts_with("unsupported setting "), "{err}");
        }
    }

    #[test]
    fn settings_without_local_effect_are_accepted_and_listed() {
        let mut job = seed_job();
        job["accelerationSettings"]["mode"] = json!("PREFERRED");
        job["simulateReservedQueue"] = json!("DISABLED");
        job["settings"]["outputGroups"][0]["outputs"][0]["videoDescription"]["afdSignaling"] = json!("NONE");
        job["settings"]["outputGroups"][0]["outputGroupSettings"]["fileGroupSettings"]["destinationSettings"] =
            json!({"s3Settings": {"storageClass": "STANDARD"}});
        let plan = plan(&job).unwrap();
        for expected in [
            "AccelerationSettings.Mode = PREFERRED",
            "SimulateReservedQueue = DISABLED",
            "Priority = 0",
            "Settings.TimecodeConfig.Source = ZEROBASED",
            "Settings.OutputGroups[0].Outputs[0].VideoDescription.AfdSignaling = NONE",
            "Settings.OutputGroups[0].OutputGroupSettings.FileGroupSettings.DestinationSettings.S3Settings.StorageClass = STANDARD",
        ] {
            assert!(plan.accepted.iter().any(|a| a == expected), "{expected} missing in {:?}", plan.accepted);
        }
        assert!(
            !plan
                .accepted
                .iter()
                .any(|a| a.contains("FileInput") || a.contains("Bitrate")),
            "honoured settings are not listed: {:?}",
            plan.accepted
        );
    }

    #[test]
    fn an_accepted_setting_at_a_value_that_would_change_the_output_is_refused() {
        let mut job = seed_job();
        job["settings"]["outputGroups"][0]["outputs"][0]["videoDescription"]["timecodeInsertion"] =
            json!("PIC_TIMING_SEI");
        let err = plan(&job).unwrap_err();
        assert_eq!(
            err.setting,
            "Settings.OutputGroups[0].Outputs[0].VideoDescription.TimecodeInsertion = PIC_TIMING_SEI"
        );
        let mut job = seed_job();
        job["hopDestinations"] = json!([{"waitMinutes": 5}]);
        assert_eq!(plan(&job).unwrap_err().setting, "HopDestinations[0].WaitMinutes");
        // An empty list names nothing: what the console exports.
        let mut job = seed_job();
        job["hopDestinations"] = json!([]);
        plan(&job).unwrap();
    }

    #[test]
    fn the_repository_templates_are_planned_with_their_timecode_setting_listed() {
        for name in ["hd-sd", "hls-abr"] {
            let path = format!(
                "{}/../../../job-templates/mediaconvert/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let template: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mut job = console_to_wire(&template);
            job["settings"]["inputs"][0]["fileInput"] = json!("s3://src/in/clip.mp4");
            let plan = plan(&job).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!plan.groups.is_empty());
            assert!(
                plan.accepted
                    .iter()
                    .any(|a| a == "Settings.TimecodeConfig.Source = ZEROBASED"),
                "{name}: {:?}",
                plan.accepted
            );
        }
    }

    #[test]
    fn console_json_becomes_wire_json_keeping_chosen_names() {
        let console = json!({"UserMetadata": {"Key One": "v"}, "Settings": {"Inputs": [{
            "AudioSelectors": {"Audio Selector 1": {"DefaultSelection": "DEFAULT"}}, "FileInput": "s3://b/k"}]}});
        assert_eq!(
            console_to_wire(&console),
            json!({"userMetadata": {"Key One": "v"}, "settings": {"inputs": [{
                "audioSelectors": {"Audio Selector 1": {"defaultSelection": "DEFAULT"}}, "fileInput": "s3://b/k"}]}})
        );
    }

    #[test]
    fn an_input_clipping_seeks_the_input_from_zero() {
        let mut job = seed_job();
        job["settings"]["inputs"][0]["inputClippings"] =
            json!([{"startTimecode": "00:00:01:12", "endTimecode": "00:01:00:00"}]);
        let planned = plan(&job).unwrap();
        let (args, _) = planned.groups[0].ffmpeg_args(Path::new("in"), &HD_SOURCE, Path::new("out"), "b");
        let args = strings(&args);
        let input_at = args.iter().position(|a| a == "-i").unwrap();
        assert_eq!(after(&args, "-ss", 0), "1.480", "12 frames at 25 fps");
        assert_eq!(after(&args, "-to", 0), "60.000");
        assert!(
            args.iter().position(|a| a == "-ss").unwrap() < input_at,
            "input seeking"
        );

        job["settings"]["inputs"][0]["timecodeSource"] = json!("EMBEDDED");
        assert_eq!(plan_err(&job), "Settings.Inputs[0].TimecodeSource = EMBEDDED");
        job["settings"]["inputs"][0]["timecodeSource"] = json!("ZEROBASED");
        job["settings"]["inputs"][0]["inputClippings"][0]["endTimecode"] = json!("00:61:00:00");
        assert_eq!(
            plan_err(&job),
            "Settings.Inputs[0].InputClippings[0].EndTimecode = 00:61:00:00"
        );
    }

    #[test]
    fn a_fixed_rotation_ignores_the_metadata_and_turns_the_picture() {
        let mut job = seed_job();
        job["settings"]["inputs"][0]["videoSelector"]["rotate"] = json!("DEGREES_90");
        let planned = plan(&job).unwrap();
        assert_eq!(planned.source_size((1920, 1080), (1080, 1920)), (1080, 1920));
        let source = Source {
            width: 1080,
            height: 1920,
            ..HD_SOURCE
        };
        let (args, _) = planned.groups[0].ffmpeg_args(Path::new("in"), &source, Path::new("out"), "b");
        let args = strings(&args);
        let input_at = args.iter().position(|a| a == "-i").unwrap();
        assert!(args[..input_at].contains(&"-noautorotate".to_owned()));
        assert!(after(&args, "-vf", 0).starts_with("transpose=clock,scale=1080:1920"));

        job["settings"]["inputs"][0]["videoSelector"]["rotate"] = json!("DEGREE_0");
        let planned = plan(&job).unwrap();
        assert_eq!(
            planned.source_size((1920, 1080), (1080, 1920)),
            (1920, 1080),
            "metadata ignored"
        );
        let (args, _) = planned.groups[0].ffmpeg_args(Path::new("in"), &HD_SOURCE, Path::new("out"), "b");
        let args = strings(&args);
        assert!(args.contains(&"-noautorotate".to_owned()));
        assert!(after(&args, "-vf", 0).starts_with("scale="));

        job["settings"]["inputs"][0]["videoSelector"]["rotate"] = json!("AUTO");
        let planned = plan(&job).unwrap();
        assert_eq!(planned.source_size((1920, 1080), (1080, 1920)), (1080, 1920));
        let (args, _) = planned.groups[0].ffmpeg_args(Path::new("in"), &HD_SOURCE, Path::new("out"), "b");
        assert!(!strings(&args).contains(&"-noautorotate".to_owned()));
    }

    /// The job `infra/local/e2e/tests/mediaconvert.rs` submits to see a refusal, as the SDK sends
    /// it: its GopSize is honoured now; an interlaced output is what is still refused.
    #[test]
    fn the_e2e_refusal_job_is_refused_for_interlacing_and_honours_its_gop() {
        let job = |h264: Value| {
            json!({"role": "r", "queue": "q", "userMetadata": {"sourceKey": "k"}, "settings": {
                "inputs": [{"fileInput": "s3://src/e2e-unsupported/x/gop.mp4"}],
                "outputGroups": [{"outputGroupSettings": {"type": "FILE_GROUP_SETTINGS",
                    "fileGroupSettings": {"destination": "s3://out/mediaconvert/e2e-unsupported/"}},
                    "outputs": [{"containerSettings": {"container": "MP4"},
                        "videoDescription": {"codecSettings": {"codec": "H_264", "h264Settings": h264}}}]}]}})
        };
        let honoured = plan(&job(
            json!({"rateControlMode": "QVBR", "maxBitrate": 1000000, "gopSize": 90.0}),
        ))
        .unwrap();
        let video = honoured.groups[0].outputs[0].video.as_ref().unwrap();
        assert_eq!(video.tuning.gop, super::super::video::Gop::Frames(90));
        let refused = plan(&job(
            json!({"rateControlMode": "QVBR", "maxBitrate": 1000000, "interlaceMode": "TOP_FIELD"}),
        ))
        .unwrap_err();
        assert!(
            refused.to_string().contains(
                "Settings.OutputGroups[0].Outputs[0].VideoDescription.CodecSettings.H264Settings.InterlaceMode"
            ),
            "{refused}"
        );
    }

    #[test]
    fn malformed_jobs_are_refused_by_name() {
        let mut job = seed_job();
        job["settings"]["inputs"][0]["fileInput"] = json!("https://example.com/a.mp4");
        assert_eq!(plan(&job).unwrap_err().setting, "Settings.Inputs[0].FileInput");
        let mut job = seed_job();
        job["settings"]["outputGroups"][0]["outputs"][1]["nameModifier"] = json!("-hd");
        assert_eq!(plan(&job).unwrap_err().setting, "Settings.OutputGroups[0].Outputs");
        let mut job = seed_job();
        job["settings"]["outputGroups"][0]["outputs"][0]["audioDescriptions"][0]["audioSourceName"] =
            json!("Audio Selector 9");
        assert_eq!(
            plan(&job).unwrap_err().setting,
            "Settings.OutputGroups[0].Outputs[0].AudioDescriptions[0].AudioSourceName = Audio Selector 9"
        );
    }

    #[test]
    fn a_destination_that_names_the_file_is_kept() {
        let mut job = seed_job();
        job["settings"]["outputGroups"][0]["outputGroupSettings"]["fileGroupSettings"]["destination"] =
            json!("s3://out/renamed/clip");
        let plan = plan(&job).unwrap();
        let group = &plan.groups[0];
        assert_eq!(
            (group.prefix.as_str(), group.base_name(&plan.input_key)),
            ("renamed/", "clip".to_owned())
        );
    }
}
