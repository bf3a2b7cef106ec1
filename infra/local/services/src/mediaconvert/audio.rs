//! Audio: the input's `AudioSelectors` and the outputs' `AudioDescriptions` with AAC → the
//! audio stream mapped from the source and ffmpeg's aac encoder.

use super::reader::{Node, Result, Unsupported};

/// One of the input's audio selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSelector {
    pub name: String,
    /// The source's audio stream it selects (0-based; `Tracks` are 1-based).
    pub stream: u32,
    /// `Offset` in milliseconds: positive delays the audio, negative advances it.
    pub offset_ms: i64,
}

pub(super) fn audio_selector(name: &str, mut selector: Node<'_>) -> Result<AudioSelector> {
    selector.one_of("defaultSelection", &["DEFAULT", "NOT_DEFAULT"])?;
    selector.one_of("selectorType", &["TRACK"])?;
    let mut stream = 0;
    if let Some(tracks) = selector.take("tracks") {
        let numbers: Vec<Option<u64>> = tracks.as_array().into_iter().flatten().map(|t| t.as_u64()).collect();
        match numbers.as_slice() {
            [Some(track)] if *track >= 1 => stream = (*track - 1) as u32,
            _ => {
                return Err(Unsupported {
                    setting: format!("{} = {tracks}", selector.path_of("tracks")),
                    detail: "the local MediaConvert selects one track (a list of one track number, from 1)".into(),
                })
            }
        }
    }
    let offset_ms = selector.int("offset", -2_147_483_648..=2_147_483_647)?.unwrap_or(0);
    selector.finish()?;
    Ok(AudioSelector {
        name: name.to_owned(),
        stream,
        offset_ms,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPlan {
    pub bitrate: u32,
    pub sample_rate: u32,
    pub channels: u32,
    /// `RateControlMode` VBR: ffmpeg's aac quality in tenths (`VbrQuality`).
    pub vbr_quality_tenths: Option<u32>,
    /// The source's audio stream (from the selector).
    pub stream: u32,
    pub offset_ms: i64,
}

impl AudioPlan {
    /// Stereo AAC-LC at `bitrate` and 48 kHz from the first audio stream.
    pub fn stereo(bitrate: u32) -> Self {
        AudioPlan {
            bitrate,
            sample_rate: 48_000,
            channels: 2,
            vbr_quality_tenths: None,
            stream: 0,
            offset_ms: 0,
        }
    }
}

pub(super) fn audio_plan(mut audio: Node<'_>, selectors: &[AudioSelector]) -> Result<AudioPlan> {
    let source = audio.string("audioSourceName")?.unwrap_or("Audio Selector 1");
    let Some(selector) = selectors.iter().find(|s| s.name == source) else {
        return Err(Unsupported {
            setting: format!("{} = {source}", audio.path_of("audioSourceName")),
            detail: "names no audio selector of the input".into(),
        });
    };
    let mut codec_settings = audio
        .object("codecSettings")?
        .ok_or_else(|| audio.refuse("codecSettings", "is required"))?;
    codec_settings.one_of("codec", &["AAC"])?;
    let mut aac = codec_settings
        .object("aacSettings")?
        .ok_or_else(|| codec_settings.refuse("aacSettings", "is required"))?;
    // ffmpeg's encoder writes AAC-LC in MPEG-4 ADTS/raw framing; HE-AAC needs an encoder this
    // host does not have.
    aac.one_of("codecProfile", &["LC"])?;
    aac.one_of("specification", &["MPEG4"])?;
    aac.one_of("rawFormat", &["NONE"])?;
    let bitrate = aac.int("bitrate", 6_000..=1_024_000)?.unwrap_or(96_000) as u32;
    let sample_rate = aac.int("sampleRate", 8_000..=96_000)?.unwrap_or(48_000) as u32;
    let channels = match aac.one_of("codingMode", &["CODING_MODE_1_0", "CODING_MODE_2_0", "CODING_MODE_5_1"])? {
        Some("CODING_MODE_1_0") => 1,
        Some("CODING_MODE_5_1") => 6,
        _ => 2,
    };
    let vbr = aac.one_of("rateControlMode", &["CBR", "VBR"])? == Some("VBR");
    let quality = aac.one_of("vbrQuality", &["LOW", "MEDIUM_LOW", "MEDIUM_HIGH", "HIGH"])?;
    let tenths = match quality {
        Some("LOW") => 5,
        Some("MEDIUM_LOW") => 10,
        Some("HIGH") => 20,
        _ => 15,
    };
    let vbr_quality_tenths = vbr.then_some(tenths);
    aac.finish()?;
    codec_settings.finish()?;
    audio.finish()?;
    Ok(AudioPlan {
        bitrate,
        sample_rate,
        channels,
        vbr_quality_tenths,
        stream: selector.stream,
        offset_ms: selector.offset_ms,
    })
}

impl AudioPlan {
    /// The `-map` of the source's audio stream (a missing track fails the run, as MediaConvert fails the job).
    pub(super) fn map(&self) -> String {
        format!("0:a:{}", self.stream)
    }

    /// The audio filter `Offset` needs, if any.
    pub(super) fn filter(&self) -> Option<String> {
        match self.offset_ms {
            0 => None,
            delay if delay > 0 => Some(format!("adelay={delay}:all=1")),
            advance => Some(format!(
                "atrim=start={:.3},asetpts=PTS-STARTPTS",
                (-advance) as f64 / 1000.0
            )),
        }
    }

    pub(super) fn encoder_args(&self, spec: &str) -> Vec<String> {
        let mut args = vec![format!("-c{spec}"), "aac".into()];
        match self.vbr_quality_tenths {
            Some(tenths) => args.extend([format!("-q{spec}"), format!("{:.1}", tenths as f64 / 10.0)]),
            None => args.extend([format!("-b{spec}"), self.bitrate.to_string()]),
        }
        args.extend([
            format!("-ar{spec}"),
            self.sample_rate.to_string(),
            format!("-ac{spec}"),
            self.channels.to_string(),
        ]);
        if let Some(filter) = self.filter() {
            args.extend([format!("-filter{spec}"), filter]);
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vbr_tracks_and_offsets_map_to_ffmpeg() {
        let plan = AudioPlan {
            vbr_quality_tenths: Some(20),
            stream: 1,
            offset_ms: -500,
            ..AudioPlan::stereo(128_000)
        };
        assert_eq!(plan.map(), "0:a:1");
        assert_eq!(
            plan.encoder_args(":a:0"),
            [
                "-c:a:0",
                "aac",
                "-q:a:0",
                "2.0",
                "-ar:a:0",
                "48000",
                "-ac:a:0",
                "2",
                "-filter:a:0",
                "atrim=start=0.500,asetpts=PTS-STARTPTS"
            ]
        );
        let delayed = AudioPlan {
            offset_ms: 250,
            ..AudioPlan::stereo(96_000)
        };
        assert_eq!(delayed.filter().as_deref(), Some("adelay=250:all=1"));
    }
}
