//! MediaConvert job templates: data in `job-templates/mediaconvert/*.json`, in the console's
//! JSON form (the seed's `job.json`), compiled into the binary and chosen by name at cold start.
//!
//! The model below covers exactly the settings the shipped templates use, which is also what the
//! local MediaConvert implements. `deny_unknown_fields` makes a template that uses anything else
//! fail the template tests (and the function's start-up) by name, instead of having a setting
//! silently dropped on its way into the SDK's typed request. Adding a setting means adding it
//! here, to the SDK conversion, and to the local MediaConvert.
//!
//! The SDK's types are not serde-deserializable (that is behind `--cfg aws_sdk_unstable`), hence
//! this small mirror of them.

use std::collections::BTreeMap;

use aws_sdk_mediaconvert::types as mc;
use serde::Deserialize;

/// The templates shipped in `job-templates/mediaconvert/`.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("hd-sd", include_str!("../../../job-templates/mediaconvert/hd-sd.json")),
    (
        "hls-abr",
        include_str!("../../../job-templates/mediaconvert/hls-abr.json"),
    ),
];

/// The scheme and bucket every template destination starts with; the submitter replaces it
/// with the configured output bucket and prefix and keeps what follows (e.g. `hls/`).
pub const DESTINATION_PLACEHOLDER: &str = "s3://destination_bucket/";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobTemplate {
    /// Replaced by the configured queue.
    pub queue: String,
    #[serde(default)]
    pub user_metadata: BTreeMap<String, String>,
    /// Replaced by the configured role.
    pub role: String,
    pub settings: Settings,
    pub acceleration_settings: Option<AccelerationSettings>,
    pub status_update_interval: Option<String>,
    pub priority: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AccelerationSettings {
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Settings {
    pub timecode_config: Option<TimecodeConfig>,
    pub output_groups: Vec<OutputGroup>,
    pub inputs: Vec<Input>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TimecodeConfig {
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Input {
    #[serde(default)]
    pub audio_selectors: BTreeMap<String, AudioSelector>,
    pub video_selector: Option<Empty>,
    pub timecode_source: Option<String>,
    /// Replaced by the object that triggered the job.
    pub file_input: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AudioSelector {
    pub default_selection: Option<String>,
}

/// A settings object the templates leave empty (`"Mp4Settings": {}`): present, with defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OutputGroup {
    pub name: Option<String>,
    pub outputs: Vec<Output>,
    pub output_group_settings: OutputGroupSettings,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OutputGroupSettings {
    pub r#type: String,
    pub file_group_settings: Option<FileGroupSettings>,
    pub hls_group_settings: Option<HlsGroupSettings>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FileGroupSettings {
    pub destination: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct HlsGroupSettings {
    pub destination: String,
    pub segment_length: Option<i32>,
    pub min_segment_length: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Output {
    pub container_settings: Option<ContainerSettings>,
    pub video_description: Option<VideoDescription>,
    #[serde(default)]
    pub audio_descriptions: Vec<AudioDescription>,
    pub name_modifier: Option<String>,
    pub output_settings: Option<OutputSettings>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ContainerSettings {
    pub container: String,
    pub mp4_settings: Option<Empty>,
    pub m3u8_settings: Option<Empty>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OutputSettings {
    pub hls_settings: Option<Empty>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct VideoDescription {
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub codec_settings: VideoCodecSettings,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct VideoCodecSettings {
    pub codec: String,
    pub h264_settings: Option<H26xSettings>,
    pub h265_settings: Option<H26xSettings>,
    pub av1_settings: Option<Av1Settings>,
}

/// The H.264 and H.265 settings the templates use (the two share these names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct H26xSettings {
    pub rate_control_mode: Option<String>,
    pub bitrate: Option<i32>,
    pub max_bitrate: Option<i32>,
    pub qvbr_settings: Option<QvbrSettings>,
    pub scene_change_detect: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Av1Settings {
    pub rate_control_mode: Option<String>,
    pub max_bitrate: Option<i32>,
    pub qvbr_settings: Option<QvbrSettings>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct QvbrSettings {
    pub qvbr_quality_level: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AudioDescription {
    pub audio_source_name: Option<String>,
    pub codec_settings: AudioCodecSettings,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AudioCodecSettings {
    pub codec: String,
    pub aac_settings: Option<AacSettings>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AacSettings {
    pub bitrate: Option<i32>,
    pub coding_mode: Option<String>,
    pub sample_rate: Option<i32>,
}

impl JobTemplate {
    /// A built-in template by name (`hd-sd`, `hls-abr`).
    pub fn built_in(name: &str) -> Option<Result<JobTemplate, String>> {
        BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, json)| JobTemplate::parse(json))
    }

    pub fn built_in_names() -> Vec<&'static str> {
        BUILT_IN.iter().map(|(n, _)| *n).collect()
    }

    pub fn parse(json: &str) -> Result<JobTemplate, String> {
        let template: JobTemplate = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if template.settings.inputs.len() != 1 {
            return Err(format!(
                "a template has exactly one input (the uploaded object), not {}",
                template.settings.inputs.len()
            ));
        }
        for (index, group) in template.settings.output_groups.iter().enumerate() {
            let destination = group.destination();
            if !destination.is_some_and(|d| d.starts_with(DESTINATION_PLACEHOLDER)) {
                return Err(format!(
                    "output group {index}: its destination must start with {DESTINATION_PLACEHOLDER} (found {destination:?})"
                ));
            }
        }
        Ok(template)
    }
}

impl OutputGroup {
    fn destination(&self) -> Option<&str> {
        let settings = &self.output_group_settings;
        settings
            .file_group_settings
            .as_ref()
            .map(|f| f.destination.as_str())
            .or(settings.hls_group_settings.as_ref().map(|h| h.destination.as_str()))
    }

    fn destination_mut(&mut self) -> Option<&mut String> {
        let settings = &mut self.output_group_settings;
        if let Some(file) = settings.file_group_settings.as_mut() {
            return Some(&mut file.destination);
        }
        settings.hls_group_settings.as_mut().map(|h| &mut h.destination)
    }
}

/// What one uploaded object fills into a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Filling<'a> {
    /// `s3://bucket/key` of the uploaded object, with the key decoded.
    pub file_input: String,
    /// `s3://output-bucket/<prefix><source key's folder>/`: where the outputs go.
    pub destination: String,
    pub queue_arn: &'a str,
    pub role_arn: &'a str,
    pub user_metadata: BTreeMap<String, String>,
}

impl JobTemplate {
    /// The template with this object's input, destinations, queue, role and metadata.
    pub fn fill(&self, filling: &Filling<'_>) -> JobTemplate {
        let mut job = self.clone();
        job.queue = filling.queue_arn.to_owned();
        job.role = filling.role_arn.to_owned();
        job.user_metadata.extend(filling.user_metadata.clone());
        job.settings.inputs[0].file_input = filling.file_input.clone();
        for group in &mut job.settings.output_groups {
            if let Some(destination) = group.destination_mut() {
                let below = destination
                    .strip_prefix(DESTINATION_PLACEHOLDER)
                    .unwrap_or("")
                    .to_owned();
                *destination = format!("{}{below}", filling.destination);
            }
        }
        job
    }

    /// The job as the SDK's typed settings.
    pub fn sdk_settings(&self) -> mc::JobSettings {
        let settings = &self.settings;
        let mut builder = mc::JobSettings::builder();
        if let Some(timecode) = &settings.timecode_config {
            builder = builder.timecode_config(
                mc::TimecodeConfig::builder()
                    .source(mc::TimecodeSource::from(timecode.source.as_str()))
                    .build(),
            );
        }
        for input in &settings.inputs {
            builder = builder.inputs(sdk_input(input));
        }
        for group in &settings.output_groups {
            builder = builder.output_groups(sdk_output_group(group));
        }
        builder.build()
    }

    pub fn sdk_acceleration_settings(&self) -> Option<mc::AccelerationSettings> {
        self.acceleration_settings.as_ref().map(|a| {
            mc::AccelerationSettings::builder()
                .mode(mc::AccelerationMode::from(a.mode.as_str()))
                .build()
        })
    }
}

fn sdk_input(input: &Input) -> mc::Input {
    let mut builder = mc::Input::builder().file_input(&input.file_input);
    for (name, selector) in &input.audio_selectors {
        let mut audio = mc::AudioSelector::builder();
        if let Some(default) = &selector.default_selection {
            audio = audio.default_selection(mc::AudioDefaultSelection::from(default.as_str()));
        }
        builder = builder.audio_selectors(name, audio.build());
    }
    if input.video_selector.is_some() {
        builder = builder.video_selector(mc::VideoSelector::builder().build());
    }
    if let Some(source) = &input.timecode_source {
        builder = builder.timecode_source(mc::InputTimecodeSource::from(source.as_str()));
    }
    builder.build()
}

fn sdk_output_group(group: &OutputGroup) -> mc::OutputGroup {
    let settings = &group.output_group_settings;
    let mut group_settings =
        mc::OutputGroupSettings::builder().r#type(mc::OutputGroupType::from(settings.r#type.as_str()));
    if let Some(file) = &settings.file_group_settings {
        group_settings =
            group_settings.file_group_settings(mc::FileGroupSettings::builder().destination(&file.destination).build());
    }
    if let Some(hls) = &settings.hls_group_settings {
        group_settings = group_settings.hls_group_settings(
            mc::HlsGroupSettings::builder()
                .destination(&hls.destination)
                .set_segment_length(hls.segment_length)
                .set_min_segment_length(hls.min_segment_length)
                .build(),
        );
    }
    let mut builder = mc::OutputGroup::builder()
        .set_name(group.name.clone())
        .output_group_settings(group_settings.build());
    for output in &group.outputs {
        builder = builder.outputs(sdk_output(output));
    }
    builder.build()
}

fn sdk_output(output: &Output) -> mc::Output {
    let mut builder = mc::Output::builder().set_name_modifier(output.name_modifier.clone());
    if let Some(container) = &output.container_settings {
        let mut settings =
            mc::ContainerSettings::builder().container(mc::ContainerType::from(container.container.as_str()));
        if container.mp4_settings.is_some() {
            settings = settings.mp4_settings(mc::Mp4Settings::builder().build());
        }
        if container.m3u8_settings.is_some() {
            settings = settings.m3u8_settings(mc::M3u8Settings::builder().build());
        }
        builder = builder.container_settings(settings.build());
    }
    if let Some(output_settings) = &output.output_settings {
        let mut settings = mc::OutputSettings::builder();
        if output_settings.hls_settings.is_some() {
            settings = settings.hls_settings(mc::HlsSettings::builder().build());
        }
        builder = builder.output_settings(settings.build());
    }
    if let Some(video) = &output.video_description {
        builder = builder.video_description(sdk_video(video));
    }
    for audio in &output.audio_descriptions {
        builder = builder.audio_descriptions(sdk_audio(audio));
    }
    builder.build()
}

fn sdk_video(video: &VideoDescription) -> mc::VideoDescription {
    let codec = &video.codec_settings;
    let mut settings = mc::VideoCodecSettings::builder().codec(mc::VideoCodec::from(codec.codec.as_str()));
    if let Some(h264) = &codec.h264_settings {
        let mut s = mc::H264Settings::builder()
            .set_bitrate(h264.bitrate)
            .set_max_bitrate(h264.max_bitrate);
        if let Some(mode) = &h264.rate_control_mode {
            s = s.rate_control_mode(mc::H264RateControlMode::from(mode.as_str()));
        }
        if let Some(detect) = &h264.scene_change_detect {
            s = s.scene_change_detect(mc::H264SceneChangeDetect::from(detect.as_str()));
        }
        if let Some(qvbr) = &h264.qvbr_settings {
            s = s.qvbr_settings(
                mc::H264QvbrSettings::builder()
                    .set_qvbr_quality_level(qvbr.qvbr_quality_level)
                    .build(),
            );
        }
        settings = settings.h264_settings(s.build());
    }
    if let Some(h265) = &codec.h265_settings {
        let mut s = mc::H265Settings::builder()
            .set_bitrate(h265.bitrate)
            .set_max_bitrate(h265.max_bitrate);
        if let Some(mode) = &h265.rate_control_mode {
            s = s.rate_control_mode(mc::H265RateControlMode::from(mode.as_str()));
        }
        if let Some(detect) = &h265.scene_change_detect {
            s = s.scene_change_detect(mc::H265SceneChangeDetect::from(detect.as_str()));
        }
        if let Some(qvbr) = &h265.qvbr_settings {
            s = s.qvbr_settings(
                mc::H265QvbrSettings::builder()
                    .set_qvbr_quality_level(qvbr.qvbr_quality_level)
                    .build(),
            );
        }
        settings = settings.h265_settings(s.build());
    }
    if let Some(av1) = &codec.av1_settings {
        let mut s = mc::Av1Settings::builder().set_max_bitrate(av1.max_bitrate);
        if let Some(mode) = &av1.rate_control_mode {
            s = s.rate_control_mode(mc::Av1RateControlMode::from(mode.as_str()));
        }
        if let Some(qvbr) = &av1.qvbr_settings {
            s = s.qvbr_settings(
                mc::Av1QvbrSettings::builder()
                    .set_qvbr_quality_level(qvbr.qvbr_quality_level)
                    .build(),
            );
        }
        settings = settings.av1_settings(s.build());
    }
    mc::VideoDescription::builder()
        .set_width(video.width)
        .set_height(video.height)
        .codec_settings(settings.build())
        .build()
}

fn sdk_audio(audio: &AudioDescription) -> mc::AudioDescription {
    let codec = &audio.codec_settings;
    let mut settings = mc::AudioCodecSettings::builder().codec(mc::AudioCodec::from(codec.codec.as_str()));
    if let Some(aac) = &codec.aac_settings {
        let mut s = mc::AacSettings::builder()
            .set_bitrate(aac.bitrate)
            .set_sample_rate(aac.sample_rate);
        if let Some(mode) = &aac.coding_mode {
            s = s.coding_mode(mc::AacCodingMode::from(mode.as_str()));
        }
        settings = settings.aac_settings(s.build());
    }
    mc::AudioDescription::builder()
        .set_audio_source_name(audio.audio_source_name.clone())
        .codec_settings(settings.build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filling() -> Filling<'static> {
        Filling {
            file_input: "s3://src/mediaconvert-uploads/my cat+1.mp4".into(),
            destination: "s3://out/mediaconvert/mediaconvert-uploads/".into(),
            queue_arn: "arn:aws:mediaconvert:eu-west-1:123456789012:queues/Default",
            role_arn: "arn:aws:iam::123456789012:role/video-suite-mediaconvert",
            user_metadata: BTreeMap::from([("sourceKey".to_owned(), "mediaconvert-uploads/my cat+1.mp4".to_owned())]),
        }
    }

    #[test]
    fn every_built_in_template_parses() {
        for name in JobTemplate::built_in_names() {
            JobTemplate::built_in(name)
                .unwrap()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(JobTemplate::built_in("4k").is_none());
    }

    #[test]
    fn the_seed_job_is_kept() {
        let template = JobTemplate::built_in("hd-sd").unwrap().unwrap();
        let outputs = &template.settings.output_groups[0].outputs;
        let hd = &outputs[0];
        assert_eq!(hd.name_modifier.as_deref(), Some("-hd"));
        let h265 = hd
            .video_description
            .as_ref()
            .unwrap()
            .codec_settings
            .h265_settings
            .as_ref()
            .unwrap();
        assert_eq!(
            (h265.rate_control_mode.as_deref(), h265.max_bitrate),
            (Some("QVBR"), Some(5_000_000))
        );
        let sd = &outputs[1];
        assert_eq!(sd.name_modifier.as_deref(), Some("-sd"));
        let video = sd.video_description.as_ref().unwrap();
        assert_eq!((video.width, video.height), (Some(256), Some(144)));
        let av1 = video.codec_settings.av1_settings.as_ref().unwrap();
        assert_eq!(
            (av1.rate_control_mode.as_deref(), av1.max_bitrate),
            (Some("QVBR"), Some(100_000))
        );
        for output in outputs {
            let aac = output.audio_descriptions[0]
                .codec_settings
                .aac_settings
                .as_ref()
                .unwrap();
            assert_eq!(
                (aac.bitrate, aac.sample_rate, aac.coding_mode.as_deref()),
                (Some(96_000), Some(48_000), Some("CODING_MODE_2_0"))
            );
        }
    }

    #[test]
    fn the_hls_ladder_has_360p_720p_1080p() {
        let template = JobTemplate::built_in("hls-abr").unwrap().unwrap();
        let group = &template.settings.output_groups[0];
        assert_eq!(group.output_group_settings.r#type, "HLS_GROUP_SETTINGS");
        let heights: Vec<_> = group
            .outputs
            .iter()
            .map(|o| o.video_description.as_ref().unwrap().height.unwrap())
            .collect();
        assert_eq!(heights, [360, 720, 1080]);
    }

    #[test]
    fn filling_sets_input_destination_queue_role_and_metadata_keeping_spaces() {
        let template = JobTemplate::built_in("hd-sd").unwrap().unwrap();
        let job = template.fill(&filling());
        assert_eq!(
            job.settings.inputs[0].file_input,
            "s3://src/mediaconvert-uploads/my cat+1.mp4"
        );
        assert_eq!(
            job.settings.output_groups[0].destination(),
            Some("s3://out/mediaconvert/mediaconvert-uploads/")
        );
        assert_eq!(job.queue, "arn:aws:mediaconvert:eu-west-1:123456789012:queues/Default");
        assert_eq!(job.role, "arn:aws:iam::123456789012:role/video-suite-mediaconvert");
        assert_eq!(job.user_metadata["sourceKey"], "mediaconvert-uploads/my cat+1.mp4");
        // The template itself is untouched: it is reused by every invocation.
        assert_eq!(template.settings.inputs[0].file_input, "s3://source_bucket/object.mp4");
    }

    #[test]
    fn a_destination_below_the_placeholder_is_kept() {
        let template = JobTemplate::built_in("hls-abr").unwrap().unwrap();
        let job = template.fill(&filling());
        assert_eq!(
            job.settings.output_groups[0].destination(),
            Some("s3://out/mediaconvert/mediaconvert-uploads/hls/")
        );
    }

    #[test]
    fn sdk_settings_carry_every_template_setting() {
        let job = JobTemplate::built_in("hd-sd").unwrap().unwrap().fill(&filling());
        let settings = job.sdk_settings();
        let input = &settings.inputs()[0];
        assert_eq!(input.file_input(), Some("s3://src/mediaconvert-uploads/my cat+1.mp4"));
        assert_eq!(
            input.audio_selectors().unwrap()["Audio Selector 1"].default_selection(),
            Some(&mc::AudioDefaultSelection::Default)
        );
        let group = &settings.output_groups()[0];
        assert_eq!(
            group
                .output_group_settings()
                .unwrap()
                .file_group_settings()
                .unwrap()
                .destination(),
            Some("s3://out/mediaconvert/mediaconvert-uploads/")
        );
        let sd = &group.outputs()[1];
        let video = sd.video_description().unwrap();
        assert_eq!((video.width(), video.height()), (Some(256), Some(144)));
        let av1 = video.codec_settings().unwrap().av1_settings().unwrap();
        assert_eq!(av1.max_bitrate(), Some(100_000));
        assert_eq!(av1.rate_control_mode(), Some(&mc::Av1RateControlMode::Qvbr));
        let hd = &group.outputs()[0];
        let h265 = hd
            .video_description()
            .unwrap()
            .codec_settings()
            .unwrap()
            .h265_settings()
            .unwrap();
        assert_eq!(
            h265.scene_change_detect(),
            Some(&mc::H265SceneChangeDetect::TransitionDetection)
        );
        let aac = hd.audio_descriptions()[0]
            .codec_settings()
            .unwrap()
            .aac_settings()
            .unwrap();
        assert_eq!(aac.coding_mode(), Some(&mc::AacCodingMode::CodingMode20));
        // Every enum value in the templates is one the SDK knows (not `Unknown`).
        let debug = format!("{settings:?}");
        assert!(!debug.contains("Unknown"), "{debug}");
    }

    #[test]
    fn a_template_with_a_setting_outside_the_model_is_refused_by_name() {
        let json = include_str!("../../../job-templates/mediaconvert/hd-sd.json")
            .replace("\"SceneChangeDetect\"", "\"GopSize\": 90, \"SceneChangeDetect\"");
        let err = JobTemplate::parse(&json).unwrap_err();
        assert!(err.contains("GopSize"), "{err}");
    }
}
