//! What the local MediaConvert implements of a job's settings, and how each maps to ffmpeg.
//!
//! A job arrives as MediaConvert's wire JSON (lowerCamelCase, as the SDK serialises it). It is
//! read into a [`JobPlan`] by walking every object and *consuming* the keys it implements; a key
//! left over, or a value outside the implemented set, refuses the job with the setting's name in
//! the console's spelling (`Settings.OutputGroups[0].Outputs[1].VideoDescription.CodecSettings.
//! H265Settings.GopSize`), never silently ignoring it.
//!
//! Implemented (everything else is refused):
//!
//! | setting | ffmpeg |
//! |---|---|
//! | `Codec` H_264 / H_265 / AV1 | libx264 (preset fast) / libx265 (preset fast, `hvc1` tag) / libsvtav1 (preset 8) |
//! | `RateControlMode` QVBR + `QvbrQualityLevel` (1–10, unset = 7) | constant quality: `-crf` 37−2q (x264), 42−2q (x265), 63−4q (SVT-AV1) |
//! | `MaxBitrate` | capped quality: `-maxrate` with a 2 s `-bufsize` |
//! | `RateControlMode` CBR / VBR + `Bitrate` (H.264/H.265) | `-b:v` (CBR also `-minrate`/`-maxrate` = bitrate) |
//! | `SceneChangeDetect` ENABLED / TRANSITION_DETECTION / DISABLED | encoder default / `scenecut=0` (`-sc_threshold 0`) |
//! | `Width` / `Height` | both: letterboxed into the box (MediaConvert's default scaling); one: the other follows the aspect ratio |
//! | `AacSettings` `Bitrate`, `SampleRate`, `CodingMode` 1_0 / 2_0 | `aac -b:a -ar -ac` |
//! | `Container` MP4 (`Mp4Settings` {}) in FILE_GROUP_SETTINGS | `-f mp4 -movflags +faststart` (MediaConvert's default moov placement) |
//! | `Container` M3U8 in HLS_GROUP_SETTINGS, `SegmentLength`, `MinSegmentLength` 0 | one `-f hls` run, `-var_stream_map`, master playlist, keyframes every segment |
//! | `NameModifier`, `Destination` | `<destination><input base name><modifier>.<ext>` |

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::Path;
use std::rc::Rc;

use serde_json::{Map, Value};

use super::table::{self, Class, Values};

/// A job refused because of one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The setting, in the console's spelling with its path.
    pub setting: String,
    pub detail: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported setting {}: {}", self.setting, self.detail)
    }
}

type Result<T> = std::result::Result<T, Unsupported>;

/// `h265Settings` → `H265Settings`: the wire name with its first letter raised.
fn console_name(wire: &str) -> String {
    let mut chars = wire.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Settings accepted without local effect, in the console's spelling with their values.
type Accepted = Rc<RefCell<Vec<String>>>;

/// One JSON object being read; every key must be consumed before [`Node::finish`], which
/// classifies the rest by the [`table`].
struct Node<'a> {
    /// Where it is, as the console names it (`Settings.OutputGroups[0].Outputs[1]`).
    path: String,
    /// The same without indices and map keys: what the table is keyed by.
    pattern: String,
    /// Its keys are names the user chose (`AudioSelectors`).
    is_map: bool,
    map: &'a Map<String, Value>,
    consumed: Vec<&'a str>,
    accepted: Accepted,
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn child_pattern(parent: &str, parent_is_map: bool, key: &str) -> String {
    if parent_is_map {
        format!("{parent}{{}}")
    } else {
        join(parent, &console_name(key))
    }
}

impl<'a> Node<'a> {
    fn root(value: &'a Value) -> Result<Node<'a>> {
        Node::new(String::new(), String::new(), false, value, Accepted::default())
    }

    fn new(path: String, pattern: String, is_map: bool, value: &'a Value, accepted: Accepted) -> Result<Node<'a>> {
        match value {
            Value::Object(map) => Ok(Node {
                path,
                pattern,
                is_map,
                map,
                consumed: Vec::new(),
                accepted,
            }),
            other => Err(Unsupported {
                detail: format!("expected an object, found {other}"),
                setting: path,
            }),
        }
    }

    fn path_of(&self, key: &str) -> String {
        join(&self.path, &console_name(key))
    }

    fn pattern_of(&self, key: &str) -> String {
        child_pattern(&self.pattern, self.is_map, key)
    }

    fn take(&mut self, key: &'a str) -> Option<&'a Value> {
        let (key, value) = self.map.get_key_value(key)?;
        self.consumed.push(key.as_str());
        if is_leaf(value) {
            // The planner reads only what the table says it honours.
            debug_assert_eq!(
                table::class_of(&self.pattern_of(key)),
                Some(Class::Honoured),
                "{} is read but not classified Honoured",
                self.pattern_of(key)
            );
        }
        Some(value)
    }

    fn string(&mut self, key: &'a str) -> Result<Option<&'a str>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.refuse(key, format!("expected a string, found {other}"))),
        }
    }

    /// A string that must be one of `allowed`.
    fn one_of(&mut self, key: &'a str, allowed: &[&str]) -> Result<Option<&'a str>> {
        let value = self.string(key)?;
        match value {
            Some(v) if !allowed.contains(&v) => Err(Unsupported {
                setting: format!("{} = {v}", self.path_of(key)),
                detail: format!("the local MediaConvert implements {}", allowed.join(", ")),
            }),
            _ => Ok(value),
        }
    }

    fn int(&mut self, key: &'a str, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>> {
        match self.take(key) {
            None => Ok(None),
            Some(value) => match value.as_i64() {
                Some(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(Unsupported {
                    setting: format!("{} = {value}", self.path_of(key)),
                    detail: format!("expected an integer in {}..={}", range.start(), range.end()),
                }),
            },
        }
    }

    fn object(&mut self, key: &'a str) -> Result<Option<Node<'a>>> {
        let path = self.path_of(key);
        let pattern = self.pattern_of(key);
        let is_map = !self.is_map && table::MAP_SETTINGS.contains(&console_name(key).as_str());
        let accepted = self.accepted.clone();
        self.take(key)
            .map(|v| Node::new(path, pattern, is_map, v, accepted))
            .transpose()
    }

    fn array(&mut self, key: &'a str) -> Result<Vec<Node<'a>>> {
        let path = self.path_of(key);
        let pattern = format!("{}[]", self.pattern_of(key));
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    Node::new(
                        format!("{path}[{i}]"),
                        pattern.clone(),
                        false,
                        item,
                        self.accepted.clone(),
                    )
                })
                .collect(),
            Some(other) => Err(Unsupported {
                setting: path,
                detail: format!("expected a list, found {other}"),
            }),
        }
    }

    fn refuse(&self, key: &str, detail: impl Into<String>) -> Unsupported {
        Unsupported {
            setting: self.path_of(key),
            detail: detail.into(),
        }
    }

    fn required<T>(&self, key: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| self.refuse(key, "is required"))
    }

    /// Classifies every key nobody consumed: accepted without local effect (and listed), or
    /// the first one that would change the output refuses the job.
    fn finish(self) -> Result<()> {
        for (key, value) in self.map {
            if self.consumed.contains(&key.as_str()) {
                continue;
            }
            let is_map = !self.is_map && table::MAP_SETTINGS.contains(&console_name(key).as_str());
            let mut accepted = self.accepted.borrow_mut();
            classify_unread(&self.path_of(key), &self.pattern_of(key), is_map, value, &mut accepted)?;
        }
        Ok(())
    }
}

/// A value the table classifies as one setting: a scalar or a list of scalars.
fn is_leaf(value: &Value) -> bool {
    match value {
        Value::Object(_) => false,
        Value::Array(items) => !items.is_empty() && items.iter().all(is_leaf),
        _ => true,
    }
}

/// Walks a setting the planner did not read, down to its leaves.
fn classify_unread(path: &str, pattern: &str, is_map: bool, value: &Value, accepted: &mut Vec<String>) -> Result<()> {
    let refused = |detail: &str| Unsupported {
        setting: path.to_owned(),
        detail: detail.to_owned(),
    };
    match value {
        Value::Null => Ok(()),
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let child_is_map = !is_map && table::MAP_SETTINGS.contains(&console_name(key).as_str());
                classify_unread(
                    &join(path, &console_name(key)),
                    &child_pattern(pattern, is_map, key),
                    child_is_map,
                    item,
                    accepted,
                )?;
            }
            Ok(())
        }
        Value::Array(items) if !items.is_empty() && !is_leaf(value) => {
            for (index, item) in items.iter().enumerate() {
                classify_unread(
                    &format!("{path}[{index}]"),
                    &format!("{pattern}[]"),
                    false,
                    item,
                    accepted,
                )?;
            }
            Ok(())
        }
        // An empty group says nothing, unless the whole group is one the job may not name.
        Value::Object(_) | Value::Array(_) if !is_leaf(value) => match table::class_of(pattern) {
            None | Some(Class::Refused) => Err(refused("not implemented by the local MediaConvert")),
            _ => Ok(()),
        },
        leaf => {
            let texts: Vec<String> = match leaf {
                Value::Array(items) => items.iter().map(value_text).collect(),
                other => vec![value_text(other)],
            };
            let shown = texts.join(",");
            match table::class_of(pattern) {
                Some(Class::NoLocalEffect(Values::Any)) => {
                    accepted.push(format!("{path} = {shown}"));
                    Ok(())
                }
                Some(Class::NoLocalEffect(Values::Only(values))) => {
                    if texts.iter().all(|t| values.contains(&t.as_str())) {
                        accepted.push(format!("{path} = {shown}"));
                        Ok(())
                    } else {
                        Err(Unsupported {
                            setting: format!("{path} = {shown}"),
                            detail: format!(
                                "the local MediaConvert accepts only {} (other values would change the output)",
                                if values.is_empty() {
                                    "an empty list".to_owned()
                                } else {
                                    values.join(", ")
                                }
                            ),
                        })
                    }
                }
                Some(Class::Honoured) => Err(refused("is implemented only together with the settings it qualifies")),
                Some(Class::Refused) | None => Err(refused("not implemented by the local MediaConvert")),
            }
        }
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
    Av1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateControl {
    /// Constant quality (level 1–10), optionally capped.
    Qvbr {
        level: u8,
        max_bitrate: Option<u32>,
    },
    Cbr {
        bitrate: u32,
    },
    Vbr {
        bitrate: u32,
        max_bitrate: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPlan {
    pub codec: VideoCodec,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub rate: RateControl,
    pub scene_change_detect: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPlan {
    pub bitrate: u32,
    pub sample_rate: u32,
    pub channels: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    pub name_modifier: String,
    pub video: Option<VideoPlan>,
    pub audio: Option<AudioPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupKind {
    File,
    Hls { segment_length: u32 },
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPlan {
    pub input_bucket: String,
    pub input_key: String,
    pub groups: Vec<GroupPlan>,
    /// Settings accepted without local effect (`Path = value`), for the job's warnings.
    pub accepted: Vec<String>,
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
    for key in ["role", "queue", "userMetadata", "clientRequestToken", "tags"] {
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
    for mut input in inputs {
        input_uri = input.string("fileInput")?;
        input_uri = Some(input.required("fileInput", input_uri)?);
        if let Some(mut audio_selectors) = input.object("audioSelectors")? {
            let map = audio_selectors.map;
            for name in map.keys() {
                let mut selector = audio_selectors.object(name)?.expect("the key was just listed");
                selector.one_of("defaultSelection", &["DEFAULT", "NOT_DEFAULT"])?;
                selector.finish()?;
                selectors.push(name.clone());
            }
            audio_selectors.finish()?;
        }
        if let Some(video_selector) = input.object("videoSelector")? {
            video_selector.finish()?;
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
        groups.push(group_plan(group, &selectors)?);
    }
    if groups.is_empty() {
        return Err(settings.refuse("outputGroups", "at least one output group is required"));
    }
    settings.finish()?;
    let accepted = job.accepted.clone();
    job.finish()?;
    let accepted = accepted.borrow().clone();
    Ok(JobPlan {
        input_bucket,
        input_key,
        groups,
        accepted,
    })
}

fn group_plan(mut group: Node<'_>, selectors: &[String]) -> Result<GroupPlan> {
    let mut settings = group
        .object("outputGroupSettings")?
        .ok_or_else(|| group.refuse("outputGroupSettings", "is required"))?;
    let kind = settings.one_of("type", &["FILE_GROUP_SETTINGS", "HLS_GROUP_SETTINGS"])?;
    let (kind, destination) = match kind {
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
            hls.finish()?;
            (
                GroupKind::Hls { segment_length },
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
    for output in group.array("outputs")? {
        outputs.push(output_plan(output, &kind, selectors)?);
    }
    if outputs.is_empty() {
        return Err(group.refuse("outputs", "at least one output is required"));
    }
    let mut modifiers: Vec<&str> = outputs.iter().map(|o| o.name_modifier.as_str()).collect();
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
    })
}

fn output_plan(mut output: Node<'_>, kind: &GroupKind, selectors: &[String]) -> Result<OutputPlan> {
    let name_modifier = output.string("nameModifier")?.unwrap_or("").to_owned();
    if matches!(kind, GroupKind::Hls { .. }) && name_modifier.is_empty() {
        return Err(output.refuse("nameModifier", "HLS outputs need one (it names the variant playlist)"));
    }
    let expected_container = match kind {
        GroupKind::File => "MP4",
        GroupKind::Hls { .. } => "M3U8",
    };
    if let Some(mut container) = output.object("containerSettings")? {
        container.one_of("container", &[expected_container])?;
        if let Some(mp4) = container.object("mp4Settings")? {
            mp4.finish()?;
        }
        if let Some(m3u8) = container.object("m3u8Settings")? {
            m3u8.finish()?;
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
    let mut audio_descriptions = output.array("audioDescriptions")?;
    if audio_descriptions.len() > 1 {
        return Err(output.refuse(
            "audioDescriptions",
            "at most one audio description per output is implemented",
        ));
    }
    let audio = audio_descriptions.pop().map(|a| audio_plan(a, selectors)).transpose()?;
    if video.is_none() {
        return Err(output.refuse("videoDescription", "audio-only outputs are not implemented"));
    }
    output.finish()?;
    Ok(OutputPlan {
        name_modifier,
        video,
        audio,
    })
}

fn video_plan(mut video: Node<'_>) -> Result<VideoPlan> {
    let width = video.int("width", 32..=8192)?.map(|w| w as u32);
    let height = video.int("height", 32..=8192)?.map(|h| h as u32);
    let mut codec_settings = video
        .object("codecSettings")?
        .ok_or_else(|| video.refuse("codecSettings", "is required"))?;
    let codec = codec_settings.one_of("codec", &["H_264", "H_265", "AV1"])?;
    let codec = codec_settings.required("codec", codec)?;
    let (codec, key) = match codec {
        "H_264" => (VideoCodec::H264, "h264Settings"),
        "H_265" => (VideoCodec::H265, "h265Settings"),
        _ => (VideoCodec::Av1, "av1Settings"),
    };
    let mut settings = codec_settings
        .object(key)?
        .ok_or_else(|| codec_settings.refuse(key, "is required"))?;
    let modes: &[&str] = if codec == VideoCodec::Av1 {
        &["QVBR"]
    } else {
        &["QVBR", "CBR", "VBR"]
    };
    let mode = settings.one_of("rateControlMode", modes)?.unwrap_or("QVBR");
    let max_bitrate = settings.int("maxBitrate", 1_000..=1_152_000_000)?.map(|b| b as u32);
    let bitrate = if codec == VideoCodec::Av1 {
        None
    } else {
        settings.int("bitrate", 1_000..=1_152_000_000)?.map(|b| b as u32)
    };
    let mut level = None;
    if let Some(mut qvbr) = settings.object("qvbrSettings")? {
        level = qvbr.int("qvbrQualityLevel", 1..=10)?.map(|l| l as u8);
        qvbr.finish()?;
    }
    let scene_change_detect = if codec == VideoCodec::Av1 {
        true
    } else {
        settings.one_of("sceneChangeDetect", &["ENABLED", "DISABLED", "TRANSITION_DETECTION"])? != Some("DISABLED")
    };
    let rate = match mode {
        "QVBR" => {
            if bitrate.is_some() {
                return Err(settings.refuse("bitrate", "QVBR takes MaxBitrate, not Bitrate"));
            }
            RateControl::Qvbr {
                // MediaConvert's AUTO quality; 7 is its documented typical value.
                level: level.unwrap_or(7),
                max_bitrate,
            }
        }
        "CBR" => RateControl::Cbr {
            bitrate: settings.required("bitrate", bitrate)?,
        },
        _ => RateControl::Vbr {
            bitrate: settings.required("bitrate", bitrate)?,
            max_bitrate,
        },
    };
    if level.is_some() && mode != "QVBR" {
        return Err(settings.refuse("qvbrSettings", "only applies to RateControlMode QVBR"));
    }
    settings.finish()?;
    codec_settings.finish()?;
    video.finish()?;
    Ok(VideoPlan {
        codec,
        width,
        height,
        rate,
        scene_change_detect,
    })
}

fn audio_plan(mut audio: Node<'_>, selectors: &[String]) -> Result<AudioPlan> {
    let source = audio.string("audioSourceName")?.unwrap_or("Audio Selector 1");
    if !selectors.iter().any(|s| s == source) {
        return Err(Unsupported {
            setting: format!("{} = {source}", audio.path_of("audioSourceName")),
            detail: "names no audio selector of the input".into(),
        });
    }
    let mut codec_settings = audio
        .object("codecSettings")?
        .ok_or_else(|| audio.refuse("codecSettings", "is required"))?;
    codec_settings.one_of("codec", &["AAC"])?;
    let mut aac = codec_settings
        .object("aacSettings")?
        .ok_or_else(|| codec_settings.refuse("aacSettings", "is required"))?;
    let bitrate = aac.int("bitrate", 6_000..=1_024_000)?.unwrap_or(96_000) as u32;
    let sample_rate = aac.int("sampleRate", 8_000..=96_000)?.unwrap_or(48_000) as u32;
    let channels = match aac.one_of("codingMode", &["CODING_MODE_1_0", "CODING_MODE_2_0"])? {
        Some("CODING_MODE_1_0") => 1,
        _ => 2,
    };
    aac.finish()?;
    codec_settings.finish()?;
    audio.finish()?;
    Ok(AudioPlan {
        bitrate,
        sample_rate,
        channels,
    })
}

/// The source as ffprobe saw it: what sizing and audio mapping depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Source {
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
}

/// Rounds to an even number of pixels (4:2:0), at least 2.
fn even(pixels: f64) -> u32 {
    (((pixels / 2.0).round() as u32) * 2).max(2)
}

impl VideoPlan {
    /// The frame size this output will have.
    pub fn output_size(&self, source: &Source) -> (u32, u32) {
        let aspect = source.width as f64 / source.height.max(1) as f64;
        match (self.width, self.height) {
            (Some(w), Some(h)) => (w, h),
            (Some(w), None) => (w, even(w as f64 / aspect)),
            (None, Some(h)) => (even(h as f64 * aspect), h),
            (None, None) => (even(source.width as f64), even(source.height as f64)),
        }
    }

    fn filter(&self, source: &Source) -> String {
        let (w, h) = self.output_size(source);
        match (self.width, self.height) {
            // MediaConvert's default scaling letterboxes into the output frame.
            (Some(_), Some(_)) => format!(
                "scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1"
            ),
            _ => format!("scale={w}:{h},setsar=1"),
        }
    }

    /// Encoder arguments; `spec` is the stream specifier (`""` for one output per file,
    /// `":v:2"` inside an HLS run).
    fn encoder_args(&self, spec: &str, keyframe_every: Option<u32>) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: String| {
            args.push(format!("{flag}{spec}"));
            args.push(value);
        };
        let (encoder, preset) = match self.codec {
            VideoCodec::H264 => ("libx264", "fast"),
            VideoCodec::H265 => ("libx265", "fast"),
            VideoCodec::Av1 => ("libsvtav1", "8"),
        };
        push("-c", encoder.to_owned());
        push("-preset", preset.to_owned());
        push("-pix_fmt", "yuv420p".to_owned());
        match self.rate {
            RateControl::Qvbr { level, max_bitrate } => {
                let level = level as i32;
                let crf = match self.codec {
                    VideoCodec::H264 => 37 - 2 * level,
                    VideoCodec::H265 => 42 - 2 * level,
                    VideoCodec::Av1 => 63 - 4 * level,
                };
                push("-crf", crf.to_string());
                if let Some(max) = max_bitrate {
                    push("-maxrate", max.to_string());
                    push("-bufsize", (max * 2).to_string());
                }
            }
            RateControl::Cbr { bitrate } => {
                push("-b", bitrate.to_string());
                push("-minrate", bitrate.to_string());
                push("-maxrate", bitrate.to_string());
                push("-bufsize", (bitrate * 2).to_string());
            }
            RateControl::Vbr { bitrate, max_bitrate } => {
                push("-b", bitrate.to_string());
                if let Some(max) = max_bitrate {
                    push("-maxrate", max.to_string());
                    push("-bufsize", (max * 2).to_string());
                }
            }
        }
        match self.codec {
            VideoCodec::H265 => {
                let mut params = vec!["log-level=error".to_owned()];
                if !self.scene_change_detect {
                    params.push("scenecut=0".to_owned());
                }
                push("-x265-params", params.join(":"));
                // `hvc1` is what browsers and Apple players expect in MP4 (MediaConvert's default).
                push("-tag", "hvc1".to_owned());
            }
            VideoCodec::H264 if !self.scene_change_detect => push("-sc_threshold", "0".to_owned()),
            _ => {}
        }
        if let Some(seconds) = keyframe_every {
            push("-force_key_frames", format!("expr:gte(t,n_forced*{seconds})"));
        }
        args
    }
}

impl AudioPlan {
    fn encoder_args(&self, spec: &str) -> Vec<String> {
        vec![
            format!("-c{spec}"),
            "aac".into(),
            format!("-b{spec}"),
            self.bitrate.to_string(),
            format!("-ar{spec}"),
            self.sample_rate.to_string(),
            format!("-ac{spec}"),
            self.channels.to_string(),
        ]
    }
}

/// One file an output group writes, relative to the group's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub name: String,
    /// Index of the output in the group, or `None` for an HLS master playlist.
    pub output: Option<usize>,
}

impl GroupPlan {
    /// The name files start with: the destination's, else the input's base name.
    pub fn base_name(&self, input_key: &str) -> String {
        if let Some(base) = &self.base_name {
            return base.clone();
        }
        let file = input_key.rsplit('/').next().unwrap_or(input_key);
        match file.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
            _ => file.to_owned(),
        }
    }

    /// The ffmpeg arguments that render this group from `input` into `dir`, and the main files
    /// it writes (an HLS group also writes segments, found in `dir` afterwards).
    pub fn ffmpeg_args(
        &self,
        input: &Path,
        source: &Source,
        dir: &Path,
        base: &str,
    ) -> (Vec<OsString>, Vec<WrittenFile>) {
        let mut args: Vec<OsString> = shared::ffmpeg::ffmpeg_base_args();
        args.push("-i".into());
        args.push(input.as_os_str().to_owned());
        let mut files = Vec::new();
        let text = |items: Vec<String>, args: &mut Vec<OsString>| args.extend(items.into_iter().map(OsString::from));
        match self.kind {
            GroupKind::File => {
                for (index, output) in self.outputs.iter().enumerate() {
                    let video = output.video.as_ref().expect("outputs have video");
                    text(
                        vec!["-map".into(), "0:v:0".into(), "-vf".into(), video.filter(source)],
                        &mut args,
                    );
                    text(video.encoder_args(":v", None), &mut args);
                    match (&output.audio, source.has_audio) {
                        (Some(audio), true) => {
                            text(vec!["-map".into(), "0:a:0".into()], &mut args);
                            text(audio.encoder_args(":a"), &mut args);
                        }
                        _ => text(vec!["-an".into()], &mut args),
                    }
                    let name = format!("{base}{}.mp4", output.name_modifier);
                    text(
                        vec!["-movflags".into(), "+faststart".into(), "-f".into(), "mp4".into()],
                        &mut args,
                    );
                    args.push(dir.join(&name).into_os_string());
                    files.push(WrittenFile {
                        name,
                        output: Some(index),
                    });
                }
            }
            GroupKind::Hls { segment_length } => {
                let mut stream_map = Vec::new();
                let mut audio_index = 0;
                for (index, output) in self.outputs.iter().enumerate() {
                    let video = output.video.as_ref().expect("outputs have video");
                    text(
                        vec![
                            "-map".into(),
                            "0:v:0".into(),
                            format!("-filter:v:{index}"),
                            video.filter(source),
                        ],
                        &mut args,
                    );
                    text(
                        video.encoder_args(&format!(":v:{index}"), Some(segment_length)),
                        &mut args,
                    );
                    let mut entry = format!("v:{index}");
                    if let (Some(audio), true) = (&output.audio, source.has_audio) {
                        text(vec!["-map".into(), "0:a:0".into()], &mut args);
                        text(audio.encoder_args(&format!(":a:{audio_index}")), &mut args);
                        entry.push_str(&format!(",a:{audio_index}"));
                        audio_index += 1;
                    }
                    entry.push_str(&format!(",name:{}", output.name_modifier));
                    stream_map.push(entry);
                    files.push(WrittenFile {
                        name: format!("{base}{}.m3u8", output.name_modifier),
                        output: Some(index),
                    });
                }
                let master = format!("{base}.m3u8");
                text(
                    vec![
                        "-f".into(),
                        "hls".into(),
                        "-hls_time".into(),
                        segment_length.to_string(),
                        "-hls_playlist_type".into(),
                        "vod".into(),
                        "-hls_flags".into(),
                        "independent_segments".into(),
                        "-start_number".into(),
                        "1".into(),
                        "-master_pl_name".into(),
                        master.clone(),
                        "-var_stream_map".into(),
                        stream_map.join(" "),
                        "-hls_segment_filename".into(),
                    ],
                    &mut args,
                );
                args.push(dir.join(format!("{base}%v_%05d.ts")).into_os_string());
                args.push(dir.join(format!("{base}%v.m3u8")).into_os_string());
                files.insert(
                    0,
                    WrittenFile {
                        name: master,
                        output: None,
                    },
                );
            }
        }
        (args, files)
    }
}

#[cfg(test)]
mod tests {
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
                channels: 2
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
            codec: VideoCodec::H265,
            width: Some(1280),
            height: None,
            rate: cbr,
            scene_change_detect: false,
        };
        let args = video.encoder_args(":v", None);
        assert_eq!(after(&args, "-b:v", 0), "2000000");
        assert_eq!(after(&args, "-maxrate:v", 0), "2000000");
        assert_eq!(after(&args, "-x265-params:v", 0), "log-level=error:scenecut=0");
        assert_eq!(video.output_size(&HD_SOURCE), (1280, 720));
        let portrait = Source {
            width: 1080,
            height: 1920,
            has_audio: false,
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
        assert_eq!(group.kind, GroupKind::Hls { segment_length: 6 });
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
    fn every_unimplemented_setting_is_refused_by_name() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "/settings/outputGroups/0/outputs/0/videoDescription/codecSettings/h265Settings/gopSize",
                json!(90),
                "Settings.OutputGroups[0].Outputs[0].VideoDescription.CodecSettings.H265Settings.GopSize",
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
                "/settings/inputs/0/videoSelector/rotate",
                json!("AUTO"),
                "Settings.Inputs[0].VideoSelector.Rotate",
            ),
            ("/settings/adAvailOffset", json!(0), "Settings.AdAvailOffset"),
            ("/hopDestinations", json!([]), "HopDestinations"),
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
                "Settings.OutputGroups[0].Outputs[0].AudioDescriptions[0].CodecSettings.AacSettings.CodecProfile",
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
        job["hopDestinations"] = json!([]);
        assert_eq!(plan(&job).unwrap_err().setting, "HopDestinations");
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
