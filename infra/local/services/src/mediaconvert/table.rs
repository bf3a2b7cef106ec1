//! The one table of what the local MediaConvert does with each setting of a CreateJob request.
//!
//! Every leaf setting of the request (as the SDK's model lists them, see
//! `model/createjob-setting-paths.txt`) falls in one class:
//!
//! * [`Class::Honoured`]: the planner reads it and the output follows it (mapped to ffmpeg).
//! * [`Class::NoLocalEffect`]: accepted, and named in the job's `messages.warning` and
//!   `warnings`, because it has no meaning for a local, file-based run (queues, billing,
//!   ACLs, signalling that ffmpeg does not write), optionally only at the listed values.
//! * [`Class::Refused`]: would change the output and is not implemented: the job fails with
//!   1030 naming it.
//!
//! Paths are written as the console names them with indices dropped: `[]` for a list item,
//! `{}` for a map value (`Settings.Inputs[].AudioSelectors{}.Tracks`). A rule ending in `.**`
//! covers the node and everything under it; the most specific rule wins. The test at the end
//! walks the model's list and fails on any leaf no rule classifies, and on any value a rule
//! names that the model does not know.

/// Values a [`Class::NoLocalEffect`] setting is accepted at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    Any,
    /// Only these (as their JSON text without quotes: `NONE`, `0`).
    Only(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Honoured,
    NoLocalEffect(Values),
    Refused,
}

use Class::{Honoured, NoLocalEffect, Refused};
use Values::{Any, Only};

pub struct Rule {
    pub path: &'static str,
    pub class: Class,
}

const fn rule(path: &'static str, class: Class) -> Rule {
    Rule { path, class }
}

const fn only(values: &'static [&'static str]) -> Class {
    NoLocalEffect(Only(values))
}

const ANY: Class = NoLocalEffect(Any);

/// Map-valued settings: their keys are names the user chose, written `{}` in paths.
pub const MAP_SETTINGS: &[&str] = &[
    "AudioSelectors",
    "CaptionSelectors",
    "DynamicAudioSelectors",
    "AudioSelectorGroups",
];

macro_rules! out {
    ($rest:literal) => {
        concat!("Settings.OutputGroups[].Outputs[].", $rest)
    };
}
macro_rules! video {
    ($rest:literal) => {
        concat!("Settings.OutputGroups[].Outputs[].VideoDescription.", $rest)
    };
}
macro_rules! h264 {
    ($rest:literal) => {
        concat!(
            "Settings.OutputGroups[].Outputs[].VideoDescription.CodecSettings.H264Settings.",
            $rest
        )
    };
}
macro_rules! h265 {
    ($rest:literal) => {
        concat!(
            "Settings.OutputGroups[].Outputs[].VideoDescription.CodecSettings.H265Settings.",
            $rest
        )
    };
}
macro_rules! av1 {
    ($rest:literal) => {
        concat!(
            "Settings.OutputGroups[].Outputs[].VideoDescription.CodecSettings.Av1Settings.",
            $rest
        )
    };
}
macro_rules! aac {
    ($rest:literal) => {
        concat!(
            "Settings.OutputGroups[].Outputs[].AudioDescriptions[].CodecSettings.AacSettings.",
            $rest
        )
    };
}
macro_rules! hls {
    ($rest:literal) => {
        concat!("Settings.OutputGroups[].OutputGroupSettings.HlsGroupSettings.", $rest)
    };
}
macro_rules! dash {
    ($rest:literal) => {
        concat!(
            "Settings.OutputGroups[].OutputGroupSettings.DashIsoGroupSettings.",
            $rest
        )
    };
}
macro_rules! cmaf {
    ($rest:literal) => {
        concat!("Settings.OutputGroups[].OutputGroupSettings.CmafGroupSettings.", $rest)
    };
}
macro_rules! m3u8 {
    ($rest:literal) => {
        concat!(
            "Settings.OutputGroups[].Outputs[].ContainerSettings.M3u8Settings.",
            $rest
        )
    };
}
macro_rules! input {
    ($rest:literal) => {
        concat!("Settings.Inputs[].", $rest)
    };
}

/// The rules, grouped as the request nests.
pub static RULES: &[Rule] = &[
    // The request around the settings.
    rule("Role", Honoured),
    rule("Queue", Honoured),
    rule("UserMetadata", Honoured),
    rule("ClientRequestToken", Honoured),
    rule("StatusUpdateInterval", Honoured),
    rule("Tags", Honoured),
    rule("Priority", ANY),
    rule("BillingTagsSource", ANY),
    rule("AccelerationSettings.Mode", ANY),
    rule("SimulateReservedQueue", ANY),
    rule("JobEngineVersion", ANY),
    // Resolved when the job is received (`templates`): the planner sees the merged job.
    rule("JobTemplate", Honoured),
    rule("HopDestinations.**", Refused),
    rule("ElementalInferenceSettings.**", Refused),
    // Job-wide settings.
    rule("Settings.**", Refused),
    rule("Settings.TimecodeConfig.**", ANY),
    rule("Settings.FollowSource", ANY),
    // Inputs: one file input; filters and selectors beyond the first video and audio refused.
    rule(input!("FileInput"), Honoured),
    // Read because `InputClippings` count from it (the local service counts from zero).
    rule(input!("TimecodeSource"), Honoured),
    rule(input!("TimecodeStart"), ANY),
    rule(input!("PsiControl"), ANY),
    rule(input!("ProgramNumber"), ANY),
    rule(input!("InputScanType"), only(&["AUTO"])),
    rule(input!("DeblockFilter"), only(&["DISABLED"])),
    rule(input!("DenoiseFilter"), only(&["DISABLED"])),
    rule(input!("FilterEnable"), only(&["AUTO", "DISABLE"])),
    rule(input!("FilterStrength"), ANY),
    rule(input!("AdvancedInputFilter"), only(&["DISABLED"])),
    rule(input!("AudioSelectors{}.DefaultSelection"), Honoured),
    rule(input!("AudioSelectors{}.SelectorType"), Honoured),
    rule(input!("AudioSelectors{}.Tracks"), Honoured),
    rule(input!("AudioSelectors{}.Offset"), Honoured),
    rule(input!("AudioSelectors{}.ProgramSelection"), ANY),
    rule(input!("AudioSelectors{}.LanguageCode"), ANY),
    rule(input!("AudioSelectors{}.CustomLanguageCode"), ANY),
    rule(
        input!("AudioSelectors{}.AudioDurationCorrection"),
        only(&["DISABLED", "AUTO"]),
    ),
    rule(input!("VideoSelector.Rotate"), Honoured),
    rule(input!("VideoSelector.ColorSpace"), only(&["FOLLOW"])),
    rule(input!("VideoSelector.ColorSpaceUsage"), ANY),
    rule(input!("VideoSelector.AlphaBehavior"), only(&["DISCARD"])),
    rule(input!("VideoSelector.PadVideo"), only(&["DISABLED"])),
    rule(input!("VideoSelector.SampleRange"), only(&["FOLLOW"])),
    rule(input!("VideoSelector.EmbeddedTimecodeOverride"), only(&["NONE"])),
    rule(input!("VideoSelector.SelectorType"), only(&["AUTO"])),
    rule(input!("InputClippings[].StartTimecode"), Honoured),
    rule(input!("InputClippings[].EndTimecode"), Honoured),
    // Output groups.
    rule("Settings.OutputGroups[].Name", ANY),
    rule("Settings.OutputGroups[].CustomName", ANY),
    rule("Settings.OutputGroups[].OutputGroupSettings.Type", Honoured),
    rule(
        "Settings.OutputGroups[].OutputGroupSettings.FileGroupSettings.Destination",
        Honoured,
    ),
    rule(
        "Settings.OutputGroups[].OutputGroupSettings.FileGroupSettings.DestinationSettings.**",
        ANY,
    ),
    rule(hls!("Destination"), Honoured),
    rule(hls!("DestinationSettings.**"), ANY),
    rule(hls!("SegmentLength"), Honoured),
    rule(hls!("MinSegmentLength"), Honoured),
    rule(hls!("SegmentControl"), Honoured),
    rule(hls!("DirectoryStructure"), Honoured),
    rule(hls!("OutputSelection"), Honoured),
    rule(hls!("StreamInfResolution"), Honoured),
    rule(hls!("ManifestCompression"), only(&["NONE"])),
    rule(hls!("ManifestDurationFormat"), ANY),
    rule(hls!("CodecSpecification"), ANY),
    rule(hls!("ClientCache"), ANY),
    rule(hls!("ProgramDateTime"), only(&["EXCLUDE"])),
    rule(hls!("ProgramDateTimePeriod"), ANY),
    rule(hls!("TimedMetadataId3Frame"), ANY),
    rule(hls!("TimedMetadataId3Period"), ANY),
    rule(hls!("TimestampDeltaMilliseconds"), ANY),
    rule(hls!("CaptionLanguageSetting"), only(&["OMIT", "NONE"])),
    rule(hls!("CaptionSegmentLengthControl"), ANY),
    rule(hls!("AudioOnlyHeader"), ANY),
    rule(hls!("MinFinalSegmentLength"), ANY),
    rule(hls!("SegmentLengthControl"), ANY),
    rule(hls!("SegmentsPerSubdirectory"), ANY),
    rule(hls!("TargetDurationCompatibilityMode"), ANY),
    rule(hls!("ProgressiveWriteHlsManifest"), ANY),
    rule(hls!("AdMarkers"), only(&[])),
    rule(hls!("BaseUrl"), only(&[""])),
    rule(hls!("ImageBasedTrickPlay"), only(&["NONE"])),
    // DASH and CMAF: one run of ffmpeg's dash muxer (fragmented MP4, MPD, and for CMAF the HLS
    // playlists from the same segments).
    rule(dash!("Destination"), Honoured),
    rule(dash!("SegmentLength"), Honoured),
    rule(dash!("FragmentLength"), Honoured),
    rule(dash!("SegmentControl"), Honoured),
    rule(dash!("WriteSegmentTimelineInRepresentation"), Honoured),
    rule(dash!("MpdProfile"), Honoured),
    rule(dash!("DestinationSettings.**"), ANY),
    rule(dash!("MinBufferTime"), ANY),
    rule(dash!("MinFinalSegmentLength"), ANY),
    rule(dash!("SegmentLengthControl"), ANY),
    rule(dash!("MpdManifestBandwidthType"), ANY),
    rule(dash!("PtsOffsetHandlingForBFrames"), ANY),
    rule(dash!("VideoCompositionOffsets"), ANY),
    rule(dash!("DashManifestStyle"), ANY),
    rule(dash!("DashAdaptationSetGrouping"), ANY),
    rule(dash!("AudioChannelConfigSchemeIdUri"), ANY),
    rule(dash!("HbbtvCompliance"), only(&["NONE"])),
    rule(dash!("ImageBasedTrickPlay"), only(&["NONE"])),
    rule(dash!("BaseUrl"), only(&[""])),
    rule(cmaf!("Destination"), Honoured),
    rule(cmaf!("SegmentLength"), Honoured),
    rule(cmaf!("FragmentLength"), Honoured),
    rule(cmaf!("SegmentControl"), Honoured),
    rule(cmaf!("WriteSegmentTimelineInRepresentation"), Honoured),
    rule(cmaf!("MpdProfile"), Honoured),
    rule(cmaf!("WriteDashManifest"), Honoured),
    rule(cmaf!("WriteHlsManifest"), Honoured),
    rule(cmaf!("StreamInfResolution"), Honoured),
    rule(cmaf!("DestinationSettings.**"), ANY),
    rule(cmaf!("MinBufferTime"), ANY),
    rule(cmaf!("MinFinalSegmentLength"), ANY),
    rule(cmaf!("SegmentLengthControl"), ANY),
    rule(cmaf!("MpdManifestBandwidthType"), ANY),
    rule(cmaf!("PtsOffsetHandlingForBFrames"), ANY),
    rule(cmaf!("VideoCompositionOffsets"), ANY),
    rule(cmaf!("DashManifestStyle"), ANY),
    rule(cmaf!("DashAdaptationSetGrouping"), ANY),
    rule(cmaf!("ManifestDurationFormat"), ANY),
    rule(cmaf!("CodecSpecification"), ANY),
    rule(cmaf!("ClientCache"), ANY),
    rule(cmaf!("TargetDurationCompatibilityMode"), ANY),
    rule(cmaf!("ManifestCompression"), only(&["NONE"])),
    rule(cmaf!("ImageBasedTrickPlay"), only(&["NONE"])),
    rule(cmaf!("BaseUrl"), only(&[""])),
    rule(out!("ContainerSettings.MpdSettings.**"), ANY),
    rule(out!("ContainerSettings.MpdSettings.Scte35Source"), only(&["NONE"])),
    rule(out!("ContainerSettings.MpdSettings.Scte35Esam"), only(&["NONE"])),
    rule(out!("ContainerSettings.MpdSettings.TimedMetadata"), only(&["NONE"])),
    rule(out!("ContainerSettings.MpdSettings.KlvMetadata"), only(&["NONE"])),
    rule(out!("ContainerSettings.MpdSettings.C2paManifest"), only(&["EXCLUDE"])),
    rule(out!("ContainerSettings.CmfcSettings.**"), ANY),
    rule(out!("ContainerSettings.CmfcSettings.Scte35Source"), only(&["NONE"])),
    rule(out!("ContainerSettings.CmfcSettings.Scte35Esam"), only(&["NONE"])),
    rule(out!("ContainerSettings.CmfcSettings.TimedMetadata"), only(&["NONE"])),
    rule(out!("ContainerSettings.CmfcSettings.KlvMetadata"), only(&["NONE"])),
    rule(out!("ContainerSettings.CmfcSettings.C2paManifest"), only(&["EXCLUDE"])),
    rule(
        out!("ContainerSettings.CmfcSettings.IFrameOnlyManifest"),
        only(&["EXCLUDE"]),
    ),
    rule(
        out!("ContainerSettings.CmfcSettings.DescriptiveVideoServiceFlag"),
        only(&["DONT_FLAG"]),
    ),
    // Outputs.
    rule(out!("NameModifier"), Honoured),
    rule(out!("Extension"), Honoured),
    rule(out!("Preset"), Honoured),
    rule(out!("ContainerSettings.Container"), Honoured),
    rule(out!("ContainerSettings.Mp4Settings.MoovPlacement"), Honoured),
    rule(out!("ContainerSettings.Mp4Settings.CslgAtom"), ANY),
    rule(out!("ContainerSettings.Mp4Settings.CttsVersion"), ANY),
    rule(out!("ContainerSettings.Mp4Settings.FreeSpaceBox"), ANY),
    rule(out!("ContainerSettings.Mp4Settings.Mp4MajorBrand"), ANY),
    rule(out!("ContainerSettings.Mp4Settings.AudioDuration"), ANY),
    rule(out!("ContainerSettings.Mp4Settings.C2paManifest"), only(&["EXCLUDE"])),
    // The transport stream of HLS segments: what ffmpeg's mpegts muxer can set is set (PIDs,
    // program, intervals); the rest (PES packing, PIDs of streams we never write) has no effect.
    rule(m3u8!("**"), ANY),
    rule(m3u8!("PmtPid"), Honoured),
    rule(m3u8!("VideoPid"), Honoured),
    rule(m3u8!("AudioPids"), Honoured),
    rule(m3u8!("ProgramNumber"), Honoured),
    rule(m3u8!("TransportStreamId"), Honoured),
    rule(m3u8!("PatInterval"), Honoured),
    rule(m3u8!("PmtInterval"), Honoured),
    rule(m3u8!("MaxPcrInterval"), Honoured),
    rule(m3u8!("Scte35Source"), only(&["NONE"])),
    rule(m3u8!("TimedMetadata"), only(&["NONE"])),
    rule(m3u8!("NielsenId3"), only(&["NONE"])),
    rule(out!("OutputSettings.HlsSettings.AudioGroupId"), ANY),
    rule(
        out!("OutputSettings.HlsSettings.AudioOnlyContainer"),
        only(&["AUTOMATIC"]),
    ),
    rule(out!("OutputSettings.HlsSettings.AudioRenditionSets"), ANY),
    rule(out!("OutputSettings.HlsSettings.AudioTrackType"), ANY),
    rule(
        out!("OutputSettings.HlsSettings.DescriptiveVideoServiceFlag"),
        only(&["DONT_FLAG"]),
    ),
    rule(
        out!("OutputSettings.HlsSettings.IFrameOnlyManifest"),
        only(&["EXCLUDE"]),
    ),
    rule(out!("OutputSettings.HlsSettings.SegmentModifier"), only(&[""])),
    // Video.
    rule(video!("Width"), Honoured),
    rule(video!("Height"), Honoured),
    rule(video!("ScalingBehavior"), Honoured),
    rule(video!("Sharpness"), Honoured),
    rule(video!("AntiAlias"), Honoured),
    rule(video!("Crop.**"), Honoured),
    rule(video!("Position.**"), Honoured),
    rule(video!("ColorMetadata"), ANY),
    rule(video!("AfdSignaling"), ANY),
    rule(video!("FixedAfd"), ANY),
    rule(video!("RespondToAfd"), only(&["NONE"])),
    rule(video!("DropFrameTimecode"), ANY),
    rule(video!("TimecodeInsertion"), only(&["DISABLED"])),
    rule(video!("TimecodeTrack"), only(&["DISABLED"])),
    rule(video!("ChromaPositionMode"), only(&["AUTO"])),
    rule(video!("CodecSettings.Codec"), Honoured),
    rule(video!("CodecSettings.FrameCaptureSettings.**"), Honoured),
    // H.264 and H.265 share their mapping (x264 and x265 take the same ffmpeg options).
    rule(h264!("RateControlMode"), Honoured),
    rule(h264!("Bitrate"), Honoured),
    rule(h264!("MaxBitrate"), Honoured),
    rule(h264!("QvbrSettings.QvbrQualityLevel"), Honoured),
    rule(h264!("QvbrSettings.QvbrQualityLevelFineTune"), ANY),
    rule(h264!("SceneChangeDetect"), Honoured),
    rule(h264!("GopSize"), Honoured),
    rule(h264!("GopSizeUnits"), Honoured),
    rule(h264!("GopClosedCadence"), Honoured),
    rule(h264!("GopBReference"), Honoured),
    rule(h264!("NumberBFramesBetweenReferenceFrames"), Honoured),
    rule(h264!("NumberReferenceFrames"), Honoured),
    rule(h264!("DynamicSubGop"), Honoured),
    rule(h264!("CodecProfile"), Honoured),
    rule(h264!("CodecLevel"), Honoured),
    rule(h264!("HrdBufferSize"), Honoured),
    rule(h264!("HrdBufferInitialFillPercentage"), Honoured),
    rule(h264!("HrdBufferFinalFillPercentage"), ANY),
    rule(h264!("QualityTuningLevel"), Honoured),
    rule(h264!("AdaptiveQuantization"), Honoured),
    rule(h264!("SpatialAdaptiveQuantization"), Honoured),
    rule(h264!("TemporalAdaptiveQuantization"), Honoured),
    rule(h264!("FlickerAdaptiveQuantization"), ANY),
    rule(h264!("EntropyEncoding"), Honoured),
    rule(h264!("Slices"), Honoured),
    rule(h264!("InterlaceMode"), Honoured),
    rule(h264!("FramerateControl"), Honoured),
    rule(h264!("FramerateNumerator"), Honoured),
    rule(h264!("FramerateDenominator"), Honoured),
    rule(h264!("FramerateConversionAlgorithm"), Honoured),
    rule(h264!("ParControl"), Honoured),
    rule(h264!("ParNumerator"), Honoured),
    rule(h264!("ParDenominator"), Honoured),
    rule(h264!("WriteMp4PackagingType"), Honoured),
    rule(h264!("MinIInterval"), ANY),
    rule(h264!("RepeatPps"), ANY),
    rule(h264!("EndOfStreamMarkers"), ANY),
    rule(h264!("UnregisteredSeiTimecode"), only(&["DISABLED"])),
    rule(h264!("FieldEncoding"), ANY),
    rule(h264!("ScanTypeConversionMode"), ANY),
    rule(h264!("Syntax"), only(&["DEFAULT"])),
    rule(h264!("Telecine"), only(&["NONE"])),
    rule(h264!("SlowPal"), only(&["DISABLED"])),
    rule(h264!("Softness"), only(&["0"])),
    rule(h264!("SaliencyAwareEncoding"), only(&["DISABLED"])),
    rule(h264!("ExplicitWeightedPrediction"), Honoured),
    rule(h264!("PerFrameMetrics"), only(&[])),
    rule(h265!("RateControlMode"), Honoured),
    rule(h265!("Bitrate"), Honoured),
    rule(h265!("MaxBitrate"), Honoured),
    rule(h265!("QvbrSettings.QvbrQualityLevel"), Honoured),
    rule(h265!("QvbrSettings.QvbrQualityLevelFineTune"), ANY),
    rule(h265!("SceneChangeDetect"), Honoured),
    rule(h265!("GopSize"), Honoured),
    rule(h265!("GopSizeUnits"), Honoured),
    rule(h265!("GopClosedCadence"), Honoured),
    rule(h265!("GopBReference"), Honoured),
    rule(h265!("NumberBFramesBetweenReferenceFrames"), Honoured),
    rule(h265!("NumberReferenceFrames"), Honoured),
    rule(h265!("DynamicSubGop"), Honoured),
    rule(h265!("CodecProfile"), Honoured),
    rule(h265!("CodecLevel"), Honoured),
    rule(h265!("HrdBufferSize"), Honoured),
    rule(h265!("HrdBufferInitialFillPercentage"), Honoured),
    rule(h265!("HrdBufferFinalFillPercentage"), ANY),
    rule(h265!("QualityTuningLevel"), Honoured),
    rule(h265!("AdaptiveQuantization"), Honoured),
    rule(h265!("SpatialAdaptiveQuantization"), Honoured),
    rule(h265!("TemporalAdaptiveQuantization"), Honoured),
    rule(h265!("FlickerAdaptiveQuantization"), ANY),
    rule(h265!("Slices"), Honoured),
    rule(h265!("InterlaceMode"), Honoured),
    rule(h265!("FramerateControl"), Honoured),
    rule(h265!("FramerateNumerator"), Honoured),
    rule(h265!("FramerateDenominator"), Honoured),
    rule(h265!("FramerateConversionAlgorithm"), Honoured),
    rule(h265!("ParControl"), Honoured),
    rule(h265!("ParNumerator"), Honoured),
    rule(h265!("ParDenominator"), Honoured),
    rule(h265!("WriteMp4PackagingType"), Honoured),
    rule(h265!("MinIInterval"), ANY),
    rule(h265!("EndOfStreamMarkers"), ANY),
    rule(h265!("UnregisteredSeiTimecode"), only(&["DISABLED"])),
    rule(h265!("ScanTypeConversionMode"), ANY),
    rule(h265!("Telecine"), only(&["NONE"])),
    rule(h265!("SlowPal"), only(&["DISABLED"])),
    rule(h265!("AlternateTransferFunctionSei"), only(&["DISABLED"])),
    rule(h265!("TemporalIds"), only(&["DISABLED"])),
    rule(h265!("Tiles"), only(&["DISABLED"])),
    rule(h265!("TilePadding"), only(&["NONE"])),
    rule(h265!("SampleAdaptiveOffsetFilterMode"), ANY),
    rule(h265!("MvOverPictureBoundaries"), only(&["ENABLED"])),
    rule(h265!("MvTemporalPredictor"), only(&["ENABLED"])),
    rule(h265!("TreeBlockSize"), ANY),
    rule(h265!("Deblocking"), only(&["ENABLED"])),
    rule(h265!("PerFrameMetrics"), only(&[])),
    rule(av1!("RateControlMode"), Honoured),
    rule(av1!("MaxBitrate"), Honoured),
    rule(av1!("QvbrSettings.QvbrQualityLevel"), Honoured),
    rule(av1!("PerFrameMetrics"), only(&[])),
    // Audio: AAC into the output.
    rule(out!("AudioDescriptions[].AudioSourceName"), Honoured),
    rule(out!("AudioDescriptions[].CodecSettings.Codec"), Honoured),
    rule(out!("AudioDescriptions[].AudioTypeControl"), ANY),
    rule(out!("AudioDescriptions[].AudioType"), ANY),
    rule(out!("AudioDescriptions[].LanguageCodeControl"), ANY),
    rule(out!("AudioDescriptions[].LanguageCode"), ANY),
    rule(out!("AudioDescriptions[].CustomLanguageCode"), ANY),
    rule(out!("AudioDescriptions[].StreamName"), ANY),
    rule(aac!("Bitrate"), Honoured),
    rule(aac!("SampleRate"), Honoured),
    rule(aac!("CodingMode"), Honoured),
    rule(aac!("CodecProfile"), Honoured),
    rule(aac!("RateControlMode"), Honoured),
    rule(aac!("VbrQuality"), Honoured),
    rule(aac!("Specification"), Honoured),
    rule(aac!("RawFormat"), Honoured),
    rule(aac!("AudioDescriptionBroadcasterMix"), only(&["NORMAL"])),
    rule(aac!("LoudnessMeasurementMode"), ANY),
    rule(aac!("TargetLoudnessRange"), ANY),
    rule(aac!("RapInterval"), ANY),
    rule(aac!("PassthroughControl"), ANY),
];

/// The class of the leaf setting at `pattern` (indices dropped), or `None` if no rule covers it.
pub fn class_of(pattern: &str) -> Option<Class> {
    RULES
        .iter()
        .filter(|rule| covers(rule.path, pattern))
        .max_by_key(|rule| rule.path.len())
        .map(|rule| rule.class)
}

fn covers(rule: &str, pattern: &str) -> bool {
    match rule.strip_suffix(".**") {
        None => rule == pattern,
        Some(prefix) => {
            pattern == prefix
                || pattern
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with(['.', '[', '{']))
        }
    }
}

/// The model's leaf settings and their enum values, from the committed list.
pub fn model_paths() -> Vec<(&'static str, Vec<&'static str>)> {
    include_str!("../../model/createjob-setting-paths.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| match line.split_once('\t') {
            Some((path, values)) => (path, values.split(',').collect()),
            None => (line, Vec::new()),
        })
        .collect()
}

/// How many of the model's leaf settings fall in each class: (honoured, accepted at every
/// value, accepted at some values, refused).
pub fn model_counts() -> (usize, usize, usize, usize) {
    let mut counts = (0, 0, 0, 0);
    for (path, _) in model_paths() {
        match class_of(path) {
            Some(Honoured) => counts.0 += 1,
            Some(NoLocalEffect(Any)) => counts.1 += 1,
            Some(NoLocalEffect(Only(_))) => counts.2 += 1,
            Some(Refused) | None => counts.3 += 1,
        }
    }
    counts
}

/// The table as Markdown, for `docs/mediaconvert.md` (a test keeps the two the same).
pub fn markdown() -> String {
    let (honoured, any, some, refused) = model_counts();
    let mut text = format!(
        "Of the {} settings a CreateJob request can carry (the SDK model's leaves): {honoured} honoured, \
         {any} accepted without local effect, {some} accepted without local effect at the listed values \
         only, {refused} refused.\n\n",
        honoured + any + some + refused
    );
    text.push_str("| setting (`[]` a list item, `{}` a named map entry, `.**` everything under) | class |\n");
    text.push_str("|---|---|\n");
    for rule in RULES {
        let class = match rule.class {
            Honoured => "honoured".to_owned(),
            NoLocalEffect(Any) => "accepted without local effect".to_owned(),
            NoLocalEffect(Only([])) => "accepted without local effect when empty".to_owned(),
            NoLocalEffect(Only(values)) => format!(
                "accepted without local effect at {}",
                values
                    .iter()
                    .map(|v| if v.is_empty() {
                        "\"\"".to_owned()
                    } else {
                        format!("`{v}`")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refused => "refused (1030)".to_owned(),
        };
        text.push_str(&format!("| `{}` | {class} |\n", rule.path));
    }
    text
}

/// What the README shows: the counts, and the rules of each area by class (a test keeps the
/// README's copy the same; the full table is in `docs/mediaconvert.md`).
pub fn readme_summary() -> String {
    const AREAS: &[(&str, &str)] = &[
        ("H.264", "H264Settings"),
        ("H.265", "H265Settings"),
        ("AAC", "AacSettings"),
        ("frame capture (thumbnails)", "FrameCaptureSettings"),
        (
            "video description (scaling, crop, position, ...)",
            "Outputs[].VideoDescription.",
        ),
        ("inputs (selectors, clippings, rotation, ...)", "Settings.Inputs[]"),
        ("FILE group, MP4/MOV containers", "FileGroupSettings"),
        ("HLS group, M3U8 (transport stream) settings", "HlsGroupSettings"),
        ("DASH ISO group", "DashIsoGroupSettings"),
        ("CMAF group", "CmafGroupSettings"),
    ];
    let (honoured, any, some, refused) = model_counts();
    let mut text = format!(
        "Of the {} settings a CreateJob request can carry: {honoured} honoured, {} accepted without \
         local effect (listed in the job's warnings), {refused} refused by name.\n\n",
        honoured + any + some + refused,
        any + some,
    );
    text.push_str(
        "| area (settings of the SDK model) | honoured | accepted without local effect | refused |\n|---|---|---|---|\n",
    );
    let paths = model_paths();
    for (area, marker) in AREAS {
        let (mut h, mut n, mut r) = (0, 0, 0);
        for (path, _) in paths.iter().filter(|(path, _)| path.contains(marker)) {
            match class_of(path) {
                Some(Honoured) => h += 1,
                Some(NoLocalEffect(_)) => n += 1,
                Some(Refused) | None => r += 1,
            }
        }
        text.push_str(&format!("| {area} | {h} | {n} | {r} |\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const README_START: &str = "<!-- mediaconvert-summary:start (generated by local-services; UPDATE_DOCS=1 cargo test -p local-services documented) -->\n";
    const README_END: &str = "<!-- mediaconvert-summary:end -->";

    /// The README's summary is the code's; `UPDATE_DOCS=1` rewrites it.
    #[test]
    fn the_documented_readme_summary_is_the_codes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../README.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (before, rest) = doc
            .split_once(README_START)
            .expect("the summary's start marker in README.md");
        let (documented, after) = rest.split_once(README_END).expect("the summary's end marker");
        let generated = readme_summary();
        if documented != generated {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                std::fs::write(path, format!("{before}{README_START}{generated}{README_END}{after}")).unwrap();
            } else {
                panic!("README.md's MediaConvert summary differs from the code's: run `UPDATE_DOCS=1 cargo test -p local-services documented`");
            }
        }
    }

    const DOC_START: &str = "<!-- settings-table:start (generated by local-services; UPDATE_DOCS=1 cargo test -p local-services documented) -->\n";
    const DOC_END: &str = "<!-- settings-table:end -->";

    /// `docs/mediaconvert.md` shows the code's table; `UPDATE_DOCS=1` rewrites it.
    #[test]
    fn the_documented_table_is_the_codes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../docs/mediaconvert.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (before, rest) = doc
            .split_once(DOC_START)
            .expect("the table's start marker in docs/mediaconvert.md");
        let (documented, after) = rest.split_once(DOC_END).expect("the table's end marker");
        let generated = markdown();
        if documented != generated {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                std::fs::write(path, format!("{before}{DOC_START}{generated}{DOC_END}{after}")).unwrap();
            } else {
                panic!(
                    "docs/mediaconvert.md's settings table differs from the code's: \
                     run `UPDATE_DOCS=1 cargo test -p local-services documented`"
                );
            }
        }
    }

    #[test]
    fn every_setting_of_the_model_is_classified() {
        let paths = model_paths();
        assert!(paths.len() > 1000, "the model list looks truncated: {}", paths.len());
        let unclassified: Vec<&str> = paths
            .iter()
            .map(|(path, _)| *path)
            .filter(|path| class_of(path).is_none())
            .collect();
        assert!(
            unclassified.is_empty(),
            "{} settings have no class:\n{}",
            unclassified.len(),
            unclassified.join("\n")
        );
    }

    #[test]
    fn every_rule_names_a_setting_of_the_model_and_values_it_knows() {
        let paths = model_paths();
        for rule in RULES {
            let matched: Vec<_> = paths.iter().filter(|(path, _)| covers(rule.path, path)).collect();
            assert!(!matched.is_empty(), "the rule {} matches no setting", rule.path);
            if let NoLocalEffect(Only(values)) = rule.class {
                for (path, known) in matched {
                    for value in values {
                        assert!(
                            known.is_empty() || known.contains(value),
                            "{path} has no value {value} (known: {known:?})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn map_valued_settings_are_the_models() {
        for (path, _) in model_paths() {
            for (at, _) in path.match_indices("{}") {
                let name = path[..at].rsplit(['.', ']']).next().unwrap();
                assert!(MAP_SETTINGS.contains(&name), "{path}: {name} is not in MAP_SETTINGS");
            }
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        assert_eq!(class_of("Settings.AdAvailOffset"), Some(Refused));
        assert_eq!(class_of("Settings.TimecodeConfig.Source"), Some(ANY));
        assert_eq!(class_of(m3u8!("AudioFramesPerPes")), Some(ANY));
        assert_eq!(class_of(m3u8!("PmtPid")), Some(Honoured));
        assert_eq!(class_of(m3u8!("Scte35Source")), Some(only(&["NONE"])));
        assert_eq!(class_of("HopDestinations"), Some(Refused));
        assert_eq!(class_of("Settings.Inputs[].AudioSelectorGroups"), Some(Refused));
        assert_eq!(class_of("Nothing.Like.This"), None);
    }
}
