//! Rendition profiles: data in `job-templates/renditions/*.json`, compiled into the binary (so a
//! deployed function cannot drift from its template), chosen by name at cold start. Every file
//! there is a profile named by its stem (`build.rs` writes the table); the template deploys one
//! rendition worker per profile, and `infra/tests/test_template.py` holds the two together.
//!
//! The rule every profile follows: fit the source inside the profile's box (landscape or
//! portrait), keep the aspect ratio, never upscale, never exceed the frame-rate cap.

use std::ffi::OsString;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ffmpeg::ffmpeg_base_args;
use crate::probe::MediaInfo;
use crate::source_fence::source_fence;

include!(concat!(env!("OUT_DIR"), "/built_in_profiles.rs"));

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenditionProfile {
    pub name: String,
    pub description: String,
    pub fit: Fit,
    pub video: VideoSettings,
    pub audio: AudioSettings,
    pub container: ContainerSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fit {
    pub long_side: u32,
    pub short_side: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSettings {
    pub encoder: String,
    pub preset: String,
    pub profile: String,
    pub pix_fmt: String,
    pub bitrate_kbps: u32,
    pub maxrate_kbps: u32,
    pub bufsize_kbps: u32,
    pub max_fps: f64,
    pub keyframe_interval_secs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSettings {
    pub encoder: String,
    pub bitrate_kbps: u32,
    pub max_channels: u32,
    pub sample_rate: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSettings {
    pub format: String,
    pub faststart: bool,
}

/// What one source becomes under one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenditionPlan {
    pub width: u32,
    pub height: u32,
    /// Set when the source was smaller than the profile's box and was kept at its own size.
    pub upscale_avoided: bool,
    /// Set when the source's frame rate was above the cap.
    pub fps_cap: Option<f64>,
    pub has_audio: bool,
}

impl RenditionProfile {
    /// A built-in profile by name (`480p`, `720p`, `1080p`).
    pub fn built_in(name: &str) -> Option<RenditionProfile> {
        BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, json)| serde_json::from_str(json).expect("built-in profiles are tested"))
    }

    pub fn built_in_names() -> Vec<&'static str> {
        BUILT_IN.iter().map(|(n, _)| *n).collect()
    }

    /// Fits the source into this profile. `None` when the source has no video stream.
    pub fn plan(&self, source: &MediaInfo) -> Option<RenditionPlan> {
        let video = source.video.as_ref()?;
        let (src_w, src_h) = video.display_size();
        let (box_w, box_h) = if src_w >= src_h {
            (self.fit.long_side, self.fit.short_side)
        } else {
            (self.fit.short_side, self.fit.long_side)
        };
        let scale = (box_w as f64 / src_w as f64).min(box_h as f64 / src_h as f64);
        let upscale_avoided = scale > 1.0;
        let scale = scale.min(1.0);
        let fps_cap = video
            .fps
            .filter(|fps| *fps > self.video.max_fps + 0.01)
            .map(|_| self.video.max_fps);
        Some(RenditionPlan {
            width: even(src_w as f64 * scale),
            height: even(src_h as f64 * scale),
            upscale_avoided,
            fps_cap,
            has_audio: source.audio.is_some(),
        })
    }

    /// The ffmpeg arguments that render `input` to `output` under `plan`.
    pub fn ffmpeg_args(&self, plan: &RenditionPlan, input: &Path, output: &Path) -> Vec<OsString> {
        let mut filters = Vec::new();
        if let Some(fps) = plan.fps_cap {
            filters.push(format!("fps={fps}"));
        }
        filters.push(self.picture_filters(plan));
        let mut args = ffmpeg_base_args();
        args.extend(source_fence(input.as_os_str()));
        args.push("-i".into());
        args.push(input.as_os_str().to_owned());
        args.extend(
            ["-map", "0:v:0", "-map", "0:a:0?", "-vf", &filters.join(",")]
                .into_iter()
                .map(OsString::from),
        );
        // Keyframes on a fixed clock, so outputs segment cleanly for HLS/DASH later.
        args.extend(self.video_encoder_args(&format!("expr:gte(t,n_forced*{})", self.video.keyframe_interval_secs)));
        if plan.has_audio {
            args.extend(self.audio_encoder_args());
        }
        if self.container.faststart {
            args.extend(["-movflags", "+faststart"].map(OsString::from));
        }
        args.extend(["-f".into(), OsString::from(&self.container.format)]);
        args.push(output.as_os_str().to_owned());
        args
    }

    /// Scaling to the planned size with square pixels: the filters after any frame-rate change.
    pub(crate) fn picture_filters(&self, plan: &RenditionPlan) -> String {
        format!("scale={}:{}:flags=bicubic,setsar=1", plan.width, plan.height)
    }

    /// The video encoder and its rate control, with keyframes forced where `force_key_frames`
    /// (an ffmpeg `-force_key_frames` value) says.
    pub(crate) fn video_encoder_args(&self, force_key_frames: &str) -> Vec<OsString> {
        let v = &self.video;
        [
            "-c:v".into(),
            v.encoder.clone(),
            "-preset".into(),
            v.preset.clone(),
            "-profile:v".into(),
            v.profile.clone(),
            "-pix_fmt".into(),
            v.pix_fmt.clone(),
            "-b:v".into(),
            format!("{}k", v.bitrate_kbps),
            "-maxrate".into(),
            format!("{}k", v.maxrate_kbps),
            "-bufsize".into(),
            format!("{}k", v.bufsize_kbps),
            "-force_key_frames".into(),
            force_key_frames.to_owned(),
        ]
        .into_iter()
        .map(OsString::from)
        .collect()
    }

    /// The audio encoder, its rate and channel rule.
    pub(crate) fn audio_encoder_args(&self) -> Vec<OsString> {
        let mut args = self.audio_codec_args();
        args.extend(["-af".into(), self.audio_filters().into()]);
        args
    }

    /// The audio encoder and its rate, without filters.
    pub(crate) fn audio_codec_args(&self) -> Vec<OsString> {
        let a = &self.audio;
        [
            "-c:a".into(),
            a.encoder.clone(),
            "-b:a".into(),
            format!("{}k", a.bitrate_kbps),
            "-ar".into(),
            a.sample_rate.to_string(),
        ]
        .into_iter()
        .map(OsString::from)
        .collect()
    }

    /// The channel rule, as an audio filter. Downmix only: `-ac 2` on a mono source would
    /// invent a channel.
    pub(crate) fn audio_filters(&self) -> String {
        format!(
            "aformat=channel_layouts=mono|stereo{}",
            if self.audio.max_channels >= 6 { "|5.1" } else { "" }
        )
    }
}

/// Rounds to the nearest even number of pixels (4:2:0 needs even sizes), at least 2.
fn even(pixels: f64) -> u32 {
    (((pixels / 2.0).round() as u32) * 2).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{AudioStream, VideoStream};

    fn source(width: u32, height: u32, fps: f64, rotation: i32, audio: bool) -> MediaInfo {
        MediaInfo {
            format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            duration_secs: Some(10.0),
            video: Some(VideoStream {
                codec: "h264".into(),
                width,
                height,
                rotation,
                fps: Some(fps),
                pix_fmt: None,
                profile: None,
                bit_rate: None,
                frame_count: None,
                duration_secs: None,
            }),
            audio: audio.then(|| AudioStream {
                codec: "aac".into(),
                channels: Some(2),
                sample_rate: Some(48000),
                time_base: Some((1, 48000)),
                start_secs: Some(0.0),
                duration_secs: None,
            }),
        }
    }

    #[test]
    fn every_built_in_profile_parses_and_matches_its_name() {
        for name in RenditionProfile::built_in_names() {
            let profile = RenditionProfile::built_in(name).unwrap();
            assert_eq!(profile.name, name);
            assert_eq!(profile.video.max_fps, 30.0);
        }
        assert!(RenditionProfile::built_in("4k").is_none());
    }

    #[test]
    fn every_data_file_is_built_in_smallest_first() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../job-templates/renditions");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut names = RenditionProfile::built_in_names();
        let long_sides: Vec<u32> = names
            .iter()
            .map(|n| RenditionProfile::built_in(n).unwrap().fit.long_side)
            .collect();
        assert!(long_sides.is_sorted(), "{names:?}: {long_sides:?}");
        files.sort();
        names.sort();
        assert_eq!(names, files);
    }

    #[test]
    fn seed_targets_are_kept() {
        let kbps = |n| RenditionProfile::built_in(n).unwrap().video.bitrate_kbps;
        assert_eq!((kbps("480p"), kbps("720p"), kbps("1080p")), (1000, 2000, 5000));
    }

    #[test]
    fn downscales_keeping_aspect_ratio() {
        let p = RenditionProfile::built_in("720p").unwrap();
        let plan = p.plan(&source(1920, 1080, 25.0, 0, true)).unwrap();
        assert_eq!(
            (plan.width, plan.height, plan.upscale_avoided, plan.fps_cap),
            (1280, 720, false, None)
        );
        // 4:3 inside 16:9 box: height bound.
        let plan = p.plan(&source(1440, 1080, 25.0, 0, true)).unwrap();
        assert_eq!((plan.width, plan.height), (960, 720));
        // Ultra-wide: width bound, height rounded to even.
        let plan = p.plan(&source(2560, 1080, 25.0, 0, true)).unwrap();
        assert_eq!((plan.width, plan.height), (1280, 540));
    }

    #[test]
    fn never_upscales() {
        let p = RenditionProfile::built_in("1080p").unwrap();
        let plan = p.plan(&source(640, 360, 30.0, 0, true)).unwrap();
        assert_eq!((plan.width, plan.height, plan.upscale_avoided), (640, 360, true));
        // Odd sizes are evened down to what 4:2:0 allows.
        let plan = p.plan(&source(641, 361, 30.0, 0, true)).unwrap();
        assert_eq!((plan.width % 2, plan.height % 2), (0, 0));
    }

    #[test]
    fn portrait_sources_fit_the_turned_box() {
        let p = RenditionProfile::built_in("720p").unwrap();
        let plan = p.plan(&source(1080, 1920, 30.0, 0, true)).unwrap();
        assert_eq!((plan.width, plan.height), (720, 1280));
        // Coded landscape with a 90° display matrix is portrait on screen.
        let plan = p.plan(&source(1920, 1080, 30.0, 90, true)).unwrap();
        assert_eq!((plan.width, plan.height), (720, 1280));
    }

    #[test]
    fn frame_rate_is_capped_not_raised() {
        let p = RenditionProfile::built_in("720p").unwrap();
        assert_eq!(p.plan(&source(1280, 720, 59.94, 0, true)).unwrap().fps_cap, Some(30.0));
        assert_eq!(p.plan(&source(1280, 720, 29.97, 0, true)).unwrap().fps_cap, None);
        assert_eq!(p.plan(&source(1280, 720, 30.0, 0, true)).unwrap().fps_cap, None);
    }

    #[test]
    fn ffmpeg_arguments_are_a_vector_with_the_profile_settings() {
        let p = RenditionProfile::built_in("720p").unwrap();
        let plan = p.plan(&source(1920, 1080, 60.0, 0, true)).unwrap();
        let args = p.ffmpeg_args(&plan, Path::new("/tmp/my source+1.mov"), Path::new("/tmp/out.mp4"));
        assert!(
            crate::source_fence::is_fenced(&args, "/tmp/my source+1.mov".as_ref()),
            "{args:?}"
        );
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let pos = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .unwrap_or_else(|| panic!("{flag} missing"))
        };
        assert_eq!(args[0], "-nostdin");
        assert_eq!(args[pos("-i") + 1], "/tmp/my source+1.mov");
        assert_eq!(args[pos("-vf") + 1], "fps=30,scale=1280:720:flags=bicubic,setsar=1");
        assert_eq!(args[pos("-c:v") + 1], "libx264");
        assert_eq!(args[pos("-b:v") + 1], "2000k");
        assert_eq!(args[pos("-c:a") + 1], "aac");
        assert_eq!(args[pos("-movflags") + 1], "+faststart");
        assert_eq!(args.last().unwrap(), "/tmp/out.mp4");
    }

    #[test]
    fn no_audio_settings_without_an_audio_stream() {
        let p = RenditionProfile::built_in("720p").unwrap();
        let plan = p.plan(&source(1280, 720, 30.0, 0, false)).unwrap();
        let args = p.ffmpeg_args(&plan, Path::new("in"), Path::new("out"));
        assert!(!args.iter().any(|a| a == "-c:a"));
    }
}
