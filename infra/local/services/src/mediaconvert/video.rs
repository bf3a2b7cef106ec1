//! Video: `VideoDescription` and the H.264 / H.265 / AV1 / FRAME_CAPTURE codec settings →
//! ffmpeg filters and encoder options.
//!
//! x264 and x265 take the same MediaConvert settings; what ffmpeg's wrappers expose as options
//! is set as options (`-g`, `-bf`, `-refs`, `-profile`, `-level`), the rest as the encoder's own
//! parameters (`-x264-params` / `-x265-params`), so one list maps to both.

use super::reader::{Node, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
    Av1,
    /// JPEG stills at a set rate (thumbnails).
    FrameCapture,
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

/// `GopSize` with its `GopSizeUnits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gop {
    /// The encoder's choice (MediaConvert's AUTO).
    #[default]
    Auto,
    Frames(u32),
    /// In milliseconds (GopSize is a decimal number of seconds).
    Millis(u32),
}

/// `ScalingBehavior`: how the picture fits a Width × Height frame of another aspect ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scaling {
    /// Fit inside, padded with black (letterbox / pillarbox).
    #[default]
    Default,
    StretchToOutput,
    /// Fit inside, no padding: the frame is the scaled picture.
    Fit,
    /// As `Fit`, but never larger than the source.
    FitNoUpscale,
    /// Cover the frame, the overflow cropped at the centre.
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Encoder settings beyond the rate control; `None` leaves the encoder's default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tuning {
    pub gop: Gop,
    /// `GopClosedCadence` 0 allows open GOPs.
    pub open_gop: Option<bool>,
    pub b_frames: Option<u32>,
    pub b_reference: Option<bool>,
    /// `DynamicSubGop` ADAPTIVE: the encoder places B-frames.
    pub adaptive_b_frames: Option<bool>,
    pub reference_frames: Option<u32>,
    /// ffmpeg's profile name (`high`, `main10`).
    pub profile: Option<&'static str>,
    pub ten_bit: bool,
    pub high_tier: bool,
    /// `4.1`.
    pub level: Option<String>,
    pub hrd_buffer: Option<u32>,
    pub hrd_initial_fill_percent: Option<u32>,
    /// The encoder preset `QualityTuningLevel` picks.
    pub preset: Option<&'static str>,
    /// Adaptive quantization strength (x264/x265 `aq-strength`); `Some(0)` turns it off.
    pub aq_strength_percent: Option<u32>,
    pub spatial_aq: Option<bool>,
    pub temporal_aq: Option<bool>,
    pub cavlc: bool,
    pub slices: Option<u32>,
    pub weighted_prediction: Option<bool>,
    /// H.265 `WriteMp4PackagingType` HEV1: parameter sets in band, `hev1` sample entry.
    pub hev1: bool,
}

/// Picture settings: crop, scaling, position, sharpness, frame rate and pixel aspect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Picture {
    pub scaling: Scaling,
    pub crop: Option<Rect>,
    pub position: Option<Rect>,
    /// 0–100; 50 leaves the picture as scaled.
    pub sharpness: Option<u32>,
    pub anti_alias: Option<bool>,
    pub framerate: Option<(u32, u32)>,
    pub par: Option<(u32, u32)>,
}

/// `FrameCaptureSettings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captures {
    pub framerate: (u32, u32),
    pub max_captures: Option<u32>,
    /// 1–100 (JPEG quality).
    pub quality: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPlan {
    pub codec: VideoCodec,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub rate: RateControl,
    pub scene_change_detect: bool,
    pub tuning: Tuning,
    pub picture: Picture,
    pub captures: Option<Captures>,
}

impl VideoPlan {
    /// A plan with only the essentials set (the rest at the encoder's defaults).
    pub fn basic(codec: VideoCodec, width: Option<u32>, height: Option<u32>, rate: RateControl) -> Self {
        VideoPlan {
            codec,
            width,
            height,
            rate,
            scene_change_detect: true,
            tuning: Tuning::default(),
            picture: Picture::default(),
            captures: None,
        }
    }
}

fn rect(node: Option<Node<'_>>) -> Result<Option<Rect>> {
    let Some(mut node) = node else { return Ok(None) };
    let mut field = |key| node.int(key, 0..=8192).map(|v| v.unwrap_or(0) as u32);
    let rect = Rect {
        x: field("x")?,
        y: field("y")?,
        width: field("width")?,
        height: field("height")?,
    };
    if rect.width < 2 || rect.height < 2 {
        return Err(node.refuse("width", "a rectangle needs a width and a height"));
    }
    node.finish()?;
    Ok(Some(rect))
}

pub(super) fn video_plan(mut video: Node<'_>) -> Result<VideoPlan> {
    let width = video.int("width", 32..=8192)?.map(|w| w as u32);
    let height = video.int("height", 32..=8192)?.map(|h| h as u32);
    let scaling = match video.one_of(
        "scalingBehavior",
        &["DEFAULT", "STRETCH_TO_OUTPUT", "FIT", "FIT_NO_UPSCALE", "FILL"],
    )? {
        Some("STRETCH_TO_OUTPUT") => Scaling::StretchToOutput,
        Some("FIT") => Scaling::Fit,
        Some("FIT_NO_UPSCALE") => Scaling::FitNoUpscale,
        Some("FILL") => Scaling::Fill,
        _ => Scaling::Default,
    };
    let sharpness = video.int("sharpness", 0..=100)?.map(|s| s as u32);
    let anti_alias = video
        .one_of("antiAlias", &["ENABLED", "DISABLED"])?
        .map(|a| a == "ENABLED");
    let crop = rect(video.object("crop")?)?;
    let position = rect(video.object("position")?)?;
    let mut picture = Picture {
        scaling,
        crop,
        position,
        sharpness,
        anti_alias,
        ..Picture::default()
    };
    let mut codec_settings = video
        .object("codecSettings")?
        .ok_or_else(|| video.refuse("codecSettings", "is required"))?;
    let codec = codec_settings.one_of("codec", &["H_264", "H_265", "AV1", "FRAME_CAPTURE"])?;
    let codec = codec_settings.required("codec", codec)?;
    let (codec, key) = match codec {
        "H_264" => (VideoCodec::H264, "h264Settings"),
        "H_265" => (VideoCodec::H265, "h265Settings"),
        "FRAME_CAPTURE" => (VideoCodec::FrameCapture, "frameCaptureSettings"),
        _ => (VideoCodec::Av1, "av1Settings"),
    };
    let mut settings = codec_settings
        .object(key)?
        .ok_or_else(|| codec_settings.refuse(key, "is required"))?;
    if codec == VideoCodec::FrameCapture {
        let numerator = settings.int("framerateNumerator", 1..=2_147_483_647)?.unwrap_or(1) as u32;
        let denominator = settings.int("framerateDenominator", 1..=2_147_483_647)?.unwrap_or(5) as u32;
        let max_captures = settings.int("maxCaptures", 1..=10_000_000)?.map(|m| m as u32);
        let quality = settings.int("quality", 1..=100)?.unwrap_or(80) as u32;
        settings.finish()?;
        codec_settings.finish()?;
        video.finish()?;
        let mut plan = VideoPlan::basic(
            codec,
            width,
            height,
            RateControl::Qvbr {
                level: 7,
                max_bitrate: None,
            },
        );
        plan.picture = picture;
        plan.captures = Some(Captures {
            framerate: (numerator, denominator),
            max_captures,
            quality,
        });
        return Ok(plan);
    }
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
    let tuning = if codec == VideoCodec::Av1 {
        Tuning::default()
    } else {
        avc_hevc_tuning(&mut settings, codec, &mut picture)?
    };
    settings.finish()?;
    codec_settings.finish()?;
    video.finish()?;
    Ok(VideoPlan {
        codec,
        width,
        height,
        rate,
        scene_change_detect,
        tuning,
        picture,
        captures: None,
    })
}

/// The H.264 / H.265 settings shared by both codecs (their names and values are the same, but
/// for the profile and level lists).
fn avc_hevc_tuning(settings: &mut Node<'_>, codec: VideoCodec, picture: &mut Picture) -> Result<Tuning> {
    let mut tuning = Tuning::default();
    let units = settings.one_of("gopSizeUnits", &["FRAMES", "SECONDS", "AUTO"])?;
    let size = settings.take("gopSize").map(|v| (v.as_f64(), v.clone()));
    tuning.gop = match (units, size) {
        (Some("AUTO"), _) | (_, None) => Gop::Auto,
        (_, Some((Some(size), _))) if size <= 0.0 => Gop::Auto,
        (Some("SECONDS"), Some((Some(size), _))) if size <= 300.0 => Gop::Millis((size * 1000.0).round() as u32),
        (_, Some((Some(size), _))) if (1.0..=10_000.0).contains(&size) => Gop::Frames(size.round() as u32),
        (_, Some((_, value))) => {
            return Err(super::reader::Unsupported {
                setting: format!("{} = {value}", settings.path_of("gopSize")),
                detail: "expected a GOP of 1–10000 frames or up to 300 seconds".into(),
            })
        }
    };
    tuning.open_gop = settings.int("gopClosedCadence", 0..=2_147_483_647)?.map(|c| c == 0);
    tuning.b_frames = settings
        .int("numberBFramesBetweenReferenceFrames", 0..=7)?
        .map(|b| b as u32);
    tuning.b_reference = settings
        .one_of("gopBReference", &["ENABLED", "DISABLED"])?
        .map(|b| b == "ENABLED");
    tuning.adaptive_b_frames = settings
        .one_of("dynamicSubGop", &["ADAPTIVE", "STATIC"])?
        .map(|d| d == "ADAPTIVE");
    tuning.reference_frames = settings.int("numberReferenceFrames", 1..=6)?.map(|r| r as u32);
    match codec {
        VideoCodec::H264 => {
            let profile = settings.one_of("codecProfile", &["BASELINE", "MAIN", "HIGH", "HIGH_10BIT"])?;
            tuning.profile = profile.map(|p| match p {
                "BASELINE" => "baseline",
                "MAIN" => "main",
                "HIGH_10BIT" => "high10",
                _ => "high",
            });
            tuning.ten_bit = profile == Some("HIGH_10BIT");
            let level = settings.string("codecLevel")?;
            tuning.level = level_number(settings, level, "codecLevel")?;
            tuning.cavlc = settings.one_of("entropyEncoding", &["CABAC", "CAVLC"])? == Some("CAVLC");
            tuning.weighted_prediction = settings
                .one_of("explicitWeightedPrediction", &["ENABLED", "DISABLED"])?
                .map(|w| w == "ENABLED");
            settings.one_of("writeMp4PackagingType", &["AVC1"])?;
        }
        _ => {
            let profile = settings.one_of(
                "codecProfile",
                &["MAIN_MAIN", "MAIN_HIGH", "MAIN10_MAIN", "MAIN10_HIGH"],
            )?;
            tuning.ten_bit = profile.is_some_and(|p| p.starts_with("MAIN10"));
            tuning.high_tier = profile.is_some_and(|p| p.ends_with("_HIGH"));
            tuning.profile = profile.map(|_| if tuning.ten_bit { "main10" } else { "main" });
            let level = settings.string("codecLevel")?;
            tuning.level = level_number(settings, level, "codecLevel")?;
            tuning.hev1 = settings.one_of("writeMp4PackagingType", &["HVC1", "HEV1"])? == Some("HEV1");
        }
    }
    tuning.hrd_buffer = settings
        .int("hrdBufferSize", 0..=1_152_000_000)?
        .filter(|b| *b > 0)
        .map(|b| b as u32);
    tuning.hrd_initial_fill_percent = settings
        .int("hrdBufferInitialFillPercentage", 0..=100)?
        .map(|p| p as u32);
    tuning.preset = settings
        .one_of(
            "qualityTuningLevel",
            &["SINGLE_PASS", "SINGLE_PASS_HQ", "MULTI_PASS_HQ"],
        )?
        .map(|q| match q {
            "SINGLE_PASS_HQ" => "medium",
            "MULTI_PASS_HQ" => "slow",
            _ => "fast",
        });
    tuning.aq_strength_percent = settings
        .one_of(
            "adaptiveQuantization",
            &["OFF", "AUTO", "LOW", "MEDIUM", "HIGH", "HIGHER", "MAX"],
        )?
        .and_then(|aq| match aq {
            "OFF" => Some(0),
            "LOW" => Some(60),
            "MEDIUM" => Some(80),
            "HIGH" => Some(100),
            "HIGHER" => Some(130),
            "MAX" => Some(160),
            _ => None,
        });
    tuning.spatial_aq = settings
        .one_of("spatialAdaptiveQuantization", &["ENABLED", "DISABLED"])?
        .map(|s| s == "ENABLED");
    tuning.temporal_aq = settings
        .one_of("temporalAdaptiveQuantization", &["ENABLED", "DISABLED"])?
        .map(|t| t == "ENABLED");
    tuning.slices = settings.int("slices", 1..=32)?.map(|s| s as u32);
    settings.one_of("interlaceMode", &["PROGRESSIVE"])?;
    let framerate_control = settings.one_of("framerateControl", &["INITIALIZE_FROM_SOURCE", "SPECIFIED"])?;
    let numerator = settings.int("framerateNumerator", 1..=2_147_483_647)?;
    let denominator = settings.int("framerateDenominator", 1..=2_147_483_647)?;
    settings.one_of("framerateConversionAlgorithm", &["DUPLICATE_DROP"])?;
    if framerate_control == Some("SPECIFIED") {
        let numerator = settings.required("framerateNumerator", numerator)?;
        let denominator = settings.required("framerateDenominator", denominator)?;
        picture.framerate = Some((numerator as u32, denominator as u32));
    }
    let par_control = settings.one_of("parControl", &["INITIALIZE_FROM_SOURCE", "SPECIFIED"])?;
    let par_numerator = settings.int("parNumerator", 1..=2_147_483_647)?;
    let par_denominator = settings.int("parDenominator", 1..=2_147_483_647)?;
    if par_control == Some("SPECIFIED") {
        let numerator = settings.required("parNumerator", par_numerator)?;
        let denominator = settings.required("parDenominator", par_denominator)?;
        picture.par = Some((numerator as u32, denominator as u32));
    }
    Ok(tuning)
}

/// `LEVEL_4_1` → `4.1`; AUTO → `None`.
fn level_number(settings: &Node<'_>, level: Option<&str>, key: &str) -> Result<Option<String>> {
    match level {
        None | Some("AUTO") => Ok(None),
        Some(level) => level
            .strip_prefix("LEVEL_")
            .filter(|digits| {
                digits
                    .split('_')
                    .all(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            })
            .map(|digits| Some(digits.replace('_', ".")))
            .ok_or_else(|| super::reader::Unsupported {
                setting: format!("{} = {level}", settings.path_of(key)),
                detail: "expected AUTO or LEVEL_n_m".into(),
            }),
    }
}

/// The source as ffprobe saw it: what sizing, GOP timing and audio mapping depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Source {
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
    /// Frames per second (30 when the probe does not say).
    pub fps: f64,
}

/// Rounds to an even number of pixels (4:2:0), at least 2.
pub(super) fn even(pixels: f64) -> u32 {
    (((pixels / 2.0).round() as u32) * 2).max(2)
}

impl VideoPlan {
    /// The picture size after `Crop` (the source's when there is no crop).
    fn cropped(&self, source: &Source) -> (u32, u32) {
        match self.picture.crop {
            Some(crop) => (crop.width.min(source.width), crop.height.min(source.height)),
            None => (source.width, source.height),
        }
    }

    /// The frame size this output will have.
    pub fn output_size(&self, source: &Source) -> (u32, u32) {
        let (sw, sh) = self.cropped(source);
        let aspect = sw as f64 / sh.max(1) as f64;
        match (self.width, self.height) {
            (Some(w), Some(h)) => match self.picture.scaling {
                Scaling::Fit | Scaling::FitNoUpscale => {
                    let mut scale = (w as f64 / sw as f64).min(h as f64 / sh as f64);
                    if self.picture.scaling == Scaling::FitNoUpscale {
                        scale = scale.min(1.0);
                    }
                    (even(sw as f64 * scale), even(sh as f64 * scale))
                }
                _ => (w, h),
            },
            (Some(w), None) => (w, even(w as f64 / aspect)),
            (None, Some(h)) => (even(h as f64 * aspect), h),
            (None, None) => (even(sw as f64), even(sh as f64)),
        }
    }

    /// The frame rate of the output.
    pub fn output_fps(&self, source: &Source) -> f64 {
        match self.picture.framerate {
            Some((n, d)) => n as f64 / d.max(1) as f64,
            None => source.fps,
        }
    }

    pub(super) fn filter(&self, source: &Source) -> String {
        let (w, h) = self.output_size(source);
        let mut chain = Vec::new();
        if let Some(crop) = self.picture.crop {
            chain.push(format!("crop={}:{}:{}:{}", crop.width, crop.height, crop.x, crop.y));
        }
        let flags = match self.picture.anti_alias {
            Some(true) => ":flags=lanczos",
            Some(false) => ":flags=fast_bilinear",
            None => "",
        };
        match (self.picture.position, self.width, self.height) {
            // `Position`: the picture scaled into a rectangle of the output frame, the rest black.
            (Some(place), _, _) => chain.push(format!(
                "scale={}:{}{flags},pad={w}:{h}:{}:{}",
                even(place.width as f64),
                even(place.height as f64),
                place.x,
                place.y
            )),
            (None, Some(_), Some(_)) => match self.picture.scaling {
                // MediaConvert's default scaling letterboxes into the output frame.
                Scaling::Default => chain.push(format!(
                    "scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2{flags},pad={w}:{h}:(ow-iw)/2:(oh-ih)/2"
                )),
                Scaling::Fill => chain.push(format!(
                    "scale={w}:{h}:force_original_aspect_ratio=increase{flags},crop={w}:{h}"
                )),
                Scaling::StretchToOutput | Scaling::Fit | Scaling::FitNoUpscale => {
                    chain.push(format!("scale={w}:{h}{flags}"))
                }
            },
            _ => chain.push(format!("scale={w}:{h}{flags}")),
        }
        if let Some(sharpness) = self.picture.sharpness.filter(|s| *s != 50) {
            // 50 is neutral; below softens, above sharpens (luma only, as a 5×5 unsharp mask).
            let amount = (sharpness as f64 - 50.0) / 50.0 * 1.5;
            chain.push(format!("unsharp=5:5:{amount:.2}:5:5:0"));
        }
        if let Some((n, d)) = self.picture.framerate {
            chain.push(format!("fps={n}/{d}"));
        }
        match (self.picture.par, self.captures) {
            (Some((n, d)), _) => chain.push(format!("setsar={n}/{d}")),
            (None, Some(captures)) => {
                chain.push("setsar=1".into());
                let (n, d) = captures.framerate;
                chain.push(format!("fps={n}/{d}"));
            }
            (None, None) => chain.push("setsar=1".into()),
        }
        chain.join(",")
    }

    /// Encoder arguments; `spec` is the stream specifier (`":v"` for one output per file,
    /// `":v:2"` inside an HLS run).
    pub(super) fn encoder_args(&self, spec: &str, keyframe_every: Option<u32>, source: &Source) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: String| {
            args.push(format!("{flag}{spec}"));
            args.push(value);
        };
        if let Some(captures) = self.captures {
            // JPEG quality 1–100 → mjpeg's qscale 31 (worst) – 2 (best).
            let qscale = 31 - ((captures.quality.clamp(1, 100) - 1) * 29 / 99);
            push("-c", "mjpeg".to_owned());
            push("-q", qscale.to_string());
            push("-pix_fmt", "yuvj420p".to_owned());
            return args;
        }
        let tuning = &self.tuning;
        let (encoder, preset) = match self.codec {
            VideoCodec::H264 => ("libx264", tuning.preset.unwrap_or("fast")),
            VideoCodec::H265 => ("libx265", tuning.preset.unwrap_or("fast")),
            _ => ("libsvtav1", "8"),
        };
        push("-c", encoder.to_owned());
        push("-preset", preset.to_owned());
        push(
            "-pix_fmt",
            if tuning.ten_bit { "yuv420p10le" } else { "yuv420p" }.to_owned(),
        );
        let buffer = |cap: u32| tuning.hrd_buffer.unwrap_or(cap * 2).to_string();
        match self.rate {
            RateControl::Qvbr { level, max_bitrate } => {
                let level = level as i32;
                let crf = match self.codec {
                    VideoCodec::H264 => 37 - 2 * level,
                    VideoCodec::H265 => 42 - 2 * level,
                    _ => 63 - 4 * level,
                };
                push("-crf", crf.to_string());
                if let Some(max) = max_bitrate {
                    push("-maxrate", max.to_string());
                    push("-bufsize", buffer(max));
                }
            }
            RateControl::Cbr { bitrate } => {
                push("-b", bitrate.to_string());
                push("-minrate", bitrate.to_string());
                push("-maxrate", bitrate.to_string());
                push("-bufsize", buffer(bitrate));
            }
            RateControl::Vbr { bitrate, max_bitrate } => {
                push("-b", bitrate.to_string());
                if let Some(max) = max_bitrate {
                    push("-maxrate", max.to_string());
                    push("-bufsize", buffer(max));
                }
            }
        }
        if let Some(profile) = tuning.profile {
            push("-profile", profile.to_owned());
        }
        let keyint = match tuning.gop {
            Gop::Auto => None,
            Gop::Frames(frames) => Some(frames.max(1)),
            Gop::Millis(ms) => Some(((ms as f64 / 1000.0) * self.output_fps(source)).round().max(1.0) as u32),
        };
        // Parameters both encoders know by the same name.
        let mut params: Vec<String> = Vec::new();
        if let Some(keyint) = keyint {
            params.push(format!("keyint={keyint}"));
        }
        if let Some(b) = tuning.b_frames {
            params.push(format!("bframes={b}"));
        }
        if let Some(refs) = tuning.reference_frames {
            params.push(format!("ref={refs}"));
        }
        if let Some(open) = tuning.open_gop {
            params.push(format!("open-gop={}", u8::from(open)));
        }
        if let Some(adaptive) = tuning.adaptive_b_frames {
            params.push(format!("b-adapt={}", if adaptive { 2 } else { 0 }));
        }
        if let Some(fill) = tuning.hrd_initial_fill_percent {
            params.push(format!("vbv-init={:.2}", fill as f64 / 100.0));
        }
        match (tuning.aq_strength_percent, tuning.spatial_aq) {
            (Some(0), _) | (_, Some(false)) => params.push("aq-mode=0".into()),
            (Some(strength), _) => params.push(format!("aq-strength={:.2}", strength as f64 / 100.0)),
            _ => {}
        }
        if let Some(slices) = tuning.slices {
            params.push(format!("slices={slices}"));
        }
        if let Some(weighted) = tuning.weighted_prediction {
            params.push(format!("weightp={}", if weighted { 2 } else { 0 }));
        }
        match self.codec {
            VideoCodec::H265 => {
                let mut x265 = vec!["log-level=error".to_owned()];
                if !self.scene_change_detect {
                    x265.push("scenecut=0".to_owned());
                }
                x265.extend(params);
                if let Some(b_reference) = tuning.b_reference {
                    x265.push(format!("b-pyramid={}", u8::from(b_reference)));
                }
                if tuning.temporal_aq == Some(false) {
                    x265.push("cutree=0".into());
                }
                if let Some(level) = &tuning.level {
                    x265.push(format!("level-idc={level}"));
                }
                if tuning.high_tier {
                    x265.push("high-tier=1".into());
                }
                if tuning.hev1 {
                    x265.push("repeat-headers=1".into());
                }
                push("-x265-params", x265.join(":"));
                // `hvc1` is what browsers and Apple players expect in MP4 (MediaConvert's default).
                push("-tag", if tuning.hev1 { "hev1" } else { "hvc1" }.to_owned());
            }
            VideoCodec::H264 => {
                if !self.scene_change_detect {
                    push("-sc_threshold", "0".to_owned());
                }
                if let Some(level) = &tuning.level {
                    push("-level", level.clone());
                }
                if let Some(b_reference) = tuning.b_reference {
                    params.push(format!("b-pyramid={}", if b_reference { "normal" } else { "none" }));
                }
                if tuning.temporal_aq == Some(false) {
                    params.push("mbtree=0".into());
                }
                if tuning.cavlc {
                    params.push("cabac=0".into());
                }
                if !params.is_empty() {
                    push("-x264-params", params.join(":"));
                }
            }
            _ => {}
        }
        if let Some(seconds) = keyframe_every {
            push("-force_key_frames", format!("expr:gte(t,n_forced*{seconds})"));
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: Source = Source {
        width: 1920,
        height: 1080,
        has_audio: true,
        fps: 25.0,
    };

    fn value_of(args: &[String], flag: &str) -> String {
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag} missing in {args:?}"));
        args[at + 1].clone()
    }

    fn h264(tuning: Tuning) -> VideoPlan {
        VideoPlan {
            tuning,
            ..VideoPlan::basic(
                VideoCodec::H264,
                Some(1280),
                Some(720),
                RateControl::Cbr { bitrate: 3_000_000 },
            )
        }
    }

    #[test]
    fn gop_b_frames_profile_level_and_hrd_map_to_x264() {
        let plan = h264(Tuning {
            gop: Gop::Millis(2000),
            b_frames: Some(3),
            reference_frames: Some(3),
            open_gop: Some(false),
            profile: Some("high"),
            level: Some("4.1".into()),
            hrd_buffer: Some(6_000_000),
            hrd_initial_fill_percent: Some(90),
            preset: Some("medium"),
            aq_strength_percent: Some(100),
            cavlc: true,
            slices: Some(2),
            ..Tuning::default()
        });
        let args = plan.encoder_args(":v", None, &SOURCE);
        assert_eq!(value_of(&args, "-preset:v"), "medium");
        assert_eq!(value_of(&args, "-profile:v"), "high");
        assert_eq!(value_of(&args, "-level:v"), "4.1");
        assert_eq!(value_of(&args, "-bufsize:v"), "6000000");
        assert_eq!(
            value_of(&args, "-x264-params:v"),
            "keyint=50:bframes=3:ref=3:open-gop=0:vbv-init=0.90:aq-strength=1.00:slices=2:cabac=0"
        );
    }

    #[test]
    fn the_same_settings_map_to_x265_parameters() {
        let plan = VideoPlan {
            codec: VideoCodec::H265,
            scene_change_detect: false,
            ..h264(Tuning {
                gop: Gop::Frames(48),
                b_frames: Some(4),
                profile: Some("main10"),
                ten_bit: true,
                high_tier: true,
                level: Some("5.1".into()),
                temporal_aq: Some(false),
                hev1: true,
                ..Tuning::default()
            })
        };
        let args = plan.encoder_args(":v:1", Some(6), &SOURCE);
        assert_eq!(value_of(&args, "-pix_fmt:v:1"), "yuv420p10le");
        assert_eq!(value_of(&args, "-profile:v:1"), "main10");
        assert_eq!(
            value_of(&args, "-x265-params:v:1"),
            "log-level=error:scenecut=0:keyint=48:bframes=4:cutree=0:level-idc=5.1:high-tier=1:repeat-headers=1"
        );
        assert_eq!(value_of(&args, "-tag:v:1"), "hev1");
        assert_eq!(value_of(&args, "-force_key_frames:v:1"), "expr:gte(t,n_forced*6)");
    }

    #[test]
    fn scaling_behaviours_size_and_filter_the_picture() {
        let square = Source {
            width: 400,
            height: 400,
            ..SOURCE
        };
        let mut plan = VideoPlan::basic(VideoCodec::H264, Some(300), Some(400), RateControl::Cbr { bitrate: 1 });
        let cases = [
            (Scaling::Default, (300, 400), "pad=300:400"),
            (Scaling::StretchToOutput, (300, 400), "scale=300:400,setsar=1"),
            (Scaling::Fit, (300, 300), "scale=300:300,setsar=1"),
            (
                Scaling::Fill,
                (300, 400),
                "force_original_aspect_ratio=increase,crop=300:400",
            ),
        ];
        for (scaling, size, filter) in cases {
            plan.picture.scaling = scaling;
            assert_eq!(plan.output_size(&square), size, "{scaling:?}");
            assert!(
                plan.filter(&square).contains(filter),
                "{scaling:?}: {}",
                plan.filter(&square)
            );
        }
        let small = Source {
            width: 200,
            height: 200,
            ..SOURCE
        };
        plan.picture.scaling = Scaling::FitNoUpscale;
        assert_eq!(plan.output_size(&small), (200, 200));
        plan.picture.scaling = Scaling::Fit;
        assert_eq!(plan.output_size(&small), (300, 300));
    }

    #[test]
    fn crop_position_sharpness_framerate_and_par_become_filters() {
        let mut plan = VideoPlan::basic(VideoCodec::H264, Some(640), Some(360), RateControl::Cbr { bitrate: 1 });
        plan.picture = Picture {
            crop: Some(Rect {
                x: 10,
                y: 20,
                width: 1280,
                height: 720,
            }),
            position: Some(Rect {
                x: 0,
                y: 0,
                width: 320,
                height: 180,
            }),
            sharpness: Some(100),
            anti_alias: Some(true),
            framerate: Some((30000, 1001)),
            par: Some((4, 3)),
            ..Picture::default()
        };
        assert_eq!(
            plan.filter(&SOURCE),
            "crop=1280:720:10:20,scale=320:180:flags=lanczos,pad=640:360:0:0,unsharp=5:5:1.50:5:5:0,fps=30000/1001,setsar=4/3"
        );
        assert!((plan.output_fps(&SOURCE) - 29.97).abs() < 0.01);
    }

    #[test]
    fn frame_captures_are_jpegs_at_their_rate() {
        let mut plan = VideoPlan::basic(
            VideoCodec::FrameCapture,
            Some(320),
            Some(180),
            RateControl::Cbr { bitrate: 1 },
        );
        plan.captures = Some(Captures {
            framerate: (1, 2),
            max_captures: Some(3),
            quality: 100,
        });
        assert!(plan.filter(&SOURCE).ends_with("setsar=1,fps=1/2"));
        let args = plan.encoder_args(":v", None, &SOURCE);
        assert_eq!(value_of(&args, "-c:v"), "mjpeg");
        assert_eq!(value_of(&args, "-q:v"), "2");
    }
}
