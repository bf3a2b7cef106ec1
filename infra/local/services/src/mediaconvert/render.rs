//! A planned output group → the ffmpeg arguments that render it, and the files it writes.
//!
//! One group is one ffmpeg run that decodes the input once: FILE groups write a file per output,
//! HLS groups one `hls` muxer run with a variant per output, DASH / CMAF groups one `dash` muxer
//! run with a representation per video and audio.

use std::ffi::OsString;
use std::path::Path;

use super::settings::{GroupKind, GroupPlan, Rotation, Timecode, TsOptions};
use super::video::{Source, VideoPlan};

impl TsOptions {
    /// `-hls_segment_options` for the mpegts muxer, if any option is set.
    pub(super) fn muxer_options(&self) -> Option<String> {
        let mut options = Vec::new();
        if let Some(pid) = self.pmt_pid {
            options.push(format!("mpegts_pmt_start_pid={pid}"));
        }
        if let Some(pid) = self.video_pid {
            options.push(format!("mpegts_start_pid={pid}"));
        }
        if let Some(program) = self.program_number {
            options.push(format!("mpegts_service_id={program}"));
        }
        if let Some(id) = self.transport_stream_id {
            options.push(format!("mpegts_transport_stream_id={id}"));
        }
        if let Some(ms) = self.pat_interval_ms {
            options.push(format!("pat_period={:.3}", ms as f64 / 1000.0));
        }
        if let Some(ms) = self.pcr_interval_ms {
            options.push(format!("pcr_period={ms}"));
        }
        (!options.is_empty()).then(|| options.join(":"))
    }
}

/// One file an output group writes, relative to the group's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The file name; for frame captures, the name the numbered stills start with.
    pub name: String,
    /// Index of the output in the group, or `None` for an HLS master playlist.
    pub output: Option<usize>,
    /// Numbered stills (`name.0000000.jpg`, ...), listed after the run.
    pub captures: bool,
}

impl WrittenFile {
    fn media(name: String, output: usize) -> Self {
        WrittenFile {
            name,
            output: Some(output),
            captures: false,
        }
    }
}

impl Timecode {
    /// Seconds into the source at `fps`.
    pub fn seconds_at(&self, fps: f64) -> f64 {
        self.seconds as f64 + self.frames as f64 / fps.max(1.0)
    }
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
        if let Some(clipping) = self.clipping {
            // Input seeking: the clip is decoded, not the whole source.
            if let Some(start) = clipping.start {
                args.push("-ss".into());
                args.push(format!("{:.3}", start.seconds_at(source.fps)).into());
            }
            if let Some(end) = clipping.end {
                args.push("-to".into());
                args.push(format!("{:.3}", end.seconds_at(source.fps)).into());
            }
        }
        if matches!(self.rotation, Rotation::Fixed(_)) {
            args.push("-noautorotate".into());
        }
        // The input is an upload, hostile as any: read as a container that carries its media
        // inline, never as a playlist or list naming other files (the functions' fence).
        args.extend(shared::source_fence::source_fence(input.as_os_str()));
        args.push("-i".into());
        args.push(input.as_os_str().to_owned());
        // Every output's picture starts turned as the input's selector says.
        let filter = |video: &VideoPlan| match self.rotation.filter() {
            Some(turn) => format!("{turn},{}", video.filter(source)),
            None => video.filter(source),
        };
        let mut files = Vec::new();
        let text = |items: Vec<String>, args: &mut Vec<OsString>| args.extend(items.into_iter().map(OsString::from));
        match &self.kind {
            GroupKind::File => {
                for (index, output) in self.outputs.iter().enumerate() {
                    let video = output.video.as_ref().expect("outputs have video");
                    text(
                        vec!["-map".into(), "0:v:0".into(), "-vf".into(), filter(video)],
                        &mut args,
                    );
                    text(video.encoder_args(":v", None, source), &mut args);
                    if let Some(captures) = video.captures {
                        // MediaConvert numbers stills from 0 with seven digits.
                        let stem = format!("{base}{}", output.name_modifier);
                        let extension = output.extension.as_deref().unwrap_or("jpg");
                        let mut capture_args = vec!["-an".to_owned()];
                        if let Some(max) = captures.max_captures {
                            capture_args.extend(["-frames:v".to_owned(), max.to_string()]);
                        }
                        capture_args.extend([
                            "-start_number".to_owned(),
                            "0".to_owned(),
                            "-f".to_owned(),
                            "image2".to_owned(),
                        ]);
                        text(capture_args, &mut args);
                        args.push(dir.join(format!("{stem}.%07d.{extension}")).into_os_string());
                        files.push(WrittenFile {
                            name: format!("{stem}."),
                            output: Some(index),
                            captures: true,
                        });
                        continue;
                    }
                    match (&output.audio, source.has_audio) {
                        (Some(audio), true) => {
                            text(vec!["-map".into(), audio.map()], &mut args);
                            text(audio.encoder_args(":a"), &mut args);
                        }
                        _ => text(vec!["-an".into()], &mut args),
                    }
                    let extension = output.extension.as_deref().unwrap_or("mp4");
                    let name = format!("{base}{}.{extension}", output.name_modifier);
                    if output.faststart {
                        text(vec!["-movflags".into(), "+faststart".into()], &mut args);
                    }
                    text(vec!["-f".into(), "mp4".into()], &mut args);
                    args.push(dir.join(&name).into_os_string());
                    files.push(WrittenFile::media(name, index));
                }
            }
            GroupKind::Dash(dash) => {
                let (mut video_index, mut audio_index) = (0, 0);
                for (index, output) in self.outputs.iter().enumerate() {
                    if let Some(video) = &output.video {
                        text(
                            vec![
                                "-map".into(),
                                "0:v:0".into(),
                                format!("-filter:v:{video_index}"),
                                filter(video),
                            ],
                            &mut args,
                        );
                        text(
                            video.encoder_args(&format!(":v:{video_index}"), Some(dash.segment_length), source),
                            &mut args,
                        );
                        video_index += 1;
                    }
                    if let (Some(audio), true) = (&output.audio, source.has_audio) {
                        text(vec!["-map".into(), audio.map()], &mut args);
                        text(audio.encoder_args(&format!(":a:{audio_index}")), &mut args);
                        audio_index += 1;
                    }
                    files.push(WrittenFile::media(format!("{base}.mpd"), index));
                }
                let mut sets = vec!["id=0,streams=v".to_owned()];
                if audio_index > 0 {
                    sets.push("id=1,streams=a".to_owned());
                }
                let mut dash_args = vec![
                    "-f".to_owned(),
                    "dash".to_owned(),
                    "-seg_duration".to_owned(),
                    dash.segment_length.to_string(),
                    "-use_template".to_owned(),
                    "1".to_owned(),
                    "-use_timeline".to_owned(),
                    u8::from(dash.timeline).to_string(),
                    "-adaptation_sets".to_owned(),
                    sets.join(" "),
                    "-init_seg_name".to_owned(),
                    format!("{base}_$RepresentationID$_init.$ext$"),
                    "-media_seg_name".to_owned(),
                    format!("{base}_$RepresentationID$_$Number%05d$.$ext$"),
                ];
                if let Some(fragment) = dash.fragment_length.filter(|f| *f < dash.segment_length) {
                    // frag_type 1: fragments of a set duration.
                    dash_args.extend([
                        "-frag_type".to_owned(),
                        "1".to_owned(),
                        "-frag_duration".to_owned(),
                        fragment.to_string(),
                    ]);
                }
                if dash.single_file {
                    dash_args.extend([
                        "-single_file".to_owned(),
                        "1".to_owned(),
                        "-single_file_name".to_owned(),
                        format!("{base}_$RepresentationID$.$ext$"),
                    ]);
                }
                files.insert(
                    0,
                    WrittenFile {
                        name: format!("{base}.mpd"),
                        output: None,
                        captures: false,
                    },
                );
                if dash.write_hls {
                    let master = format!("{base}.m3u8");
                    dash_args.extend([
                        "-hls_playlist".to_owned(),
                        "1".to_owned(),
                        "-hls_master_name".to_owned(),
                        master.clone(),
                    ]);
                    files.insert(
                        1,
                        WrittenFile {
                            name: master,
                            output: None,
                            captures: false,
                        },
                    );
                }
                text(dash_args, &mut args);
                args.push(dir.join(format!("{base}.mpd")).into_os_string());
            }
            &GroupKind::Hls {
                segment_length,
                single_file,
            } => {
                let mut stream_map = Vec::new();
                let mut audio_index = 0;
                for (index, output) in self.outputs.iter().enumerate() {
                    let video = output.video.as_ref().expect("outputs have video");
                    text(
                        vec![
                            "-map".into(),
                            "0:v:0".into(),
                            format!("-filter:v:{index}"),
                            filter(video),
                        ],
                        &mut args,
                    );
                    text(
                        video.encoder_args(&format!(":v:{index}"), Some(segment_length), source),
                        &mut args,
                    );
                    let mut entry = format!("v:{index}");
                    if let (Some(audio), true) = (&output.audio, source.has_audio) {
                        text(vec!["-map".into(), audio.map()], &mut args);
                        text(audio.encoder_args(&format!(":a:{audio_index}")), &mut args);
                        entry.push_str(&format!(",a:{audio_index}"));
                        audio_index += 1;
                    }
                    entry.push_str(&format!(",name:{}", output.name_modifier));
                    stream_map.push(entry);
                    files.push(WrittenFile::media(
                        format!("{base}{}.m3u8", output.name_modifier),
                        index,
                    ));
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
                        if single_file {
                            "independent_segments+single_file".into()
                        } else {
                            "independent_segments".into()
                        },
                        "-start_number".into(),
                        "1".into(),
                        "-master_pl_name".into(),
                        master.clone(),
                        "-var_stream_map".into(),
                        stream_map.join(" "),
                    ],
                    &mut args,
                );
                if let Some(options) = self.ts.muxer_options() {
                    text(vec!["-hls_segment_options".into(), options], &mut args);
                }
                text(vec!["-hls_segment_filename".into()], &mut args);
                let segments = if single_file {
                    format!("{base}%v.ts")
                } else {
                    format!("{base}%v_%05d.ts")
                };
                args.push(dir.join(segments).into_os_string());
                args.push(dir.join(format!("{base}%v.m3u8")).into_os_string());
                files.insert(
                    0,
                    WrittenFile {
                        name: master,
                        output: None,
                        captures: false,
                    },
                );
            }
        }
        (args, files)
    }
}
