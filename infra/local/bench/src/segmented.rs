//! Segmented rendering against the single pass of the same profile, with the very ffmpeg
//! arguments the functions run (`shared::segments`, `RenditionProfile::ffmpeg_args`), on a 1080p
//! source made with ffmpeg (`BENCH_SEGMENTED_SECONDS`, default 600 s: the 10 minutes):
//!
//! 1. total CPU-seconds (user + system of the ffmpeg children, from `getrusage`), segmented
//!    (every video and audio segment, the join) over single pass (goal ≤ 1.10×);
//! 2. wall time on this machine, the segments one after another (each ffmpeg uses both cores);
//! 3. the projected AWS wall time at the template's `SegmentMaxConcurrency` (100, its
//!    Distributed Map) and at an inline Map's 40:
//!    plan (ffprobe) + the slowest wave of parts + the join, from the measured per-part times
//!    (this machine's 2 cores standing in for the 2 vCPUs of a 3,008 MB function). Lambda start-up
//!    and Step Functions' transitions are not measured here and not included;
//! 4. a 60-minute source to 720p projected the same way, from this run's 720p segment times
//!    (video segments of 60 s and audio segments of 5 minutes take the same time whatever the
//!    source's length; the join grows with it);
//! 5. join quality: per-frame PSNR of each output against the source, and the largest drop of the
//!    segmented file below the single pass within two frames of a join (goal ≤ 0.5 dB).
//!
//! Segments are cut as the function cuts them by default (`shared::segments::DEFAULT_SEGMENT_SECS`,
//! `DEFAULT_LEAD_IN_SECS`, `DEFAULT_LEAD_OUT_SECS`), or by `BENCH_SEGMENT_SECONDS`,
//! `BENCH_SEGMENT_LEAD_IN_SECS` and `BENCH_SEGMENT_LEAD_OUT_SECS` (leads of 0 and 0 show the joins
//! without).
//!
//! Runs without the stack: what is measured is ffmpeg's work, which the functions only supervise.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{make_sample, BoxError, SampleSpec};
use shared::ffmpeg::{Deadline, Supervised};
use shared::probe::probe_file;
use shared::profiles::RenditionProfile;
use shared::segments::{
    aac_frames_secs, audio_segment_args, audio_segments, join_args, keep_audio_frames, segment_command, FrameRate,
    SegmentPlan, DEFAULT_AUDIO_SEGMENT_SECS, DEFAULT_LEAD_IN_SECS, DEFAULT_LEAD_OUT_SECS, DEFAULT_SEGMENT_SECS,
};

/// The template's default.
const TEMPLATE_CONCURRENCY: usize = 100;
/// What an inline Map would allow, for comparison.
const INLINE_MAP_CONCURRENCY: usize = 40;

/// CPU time of the children this process has waited for so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Wall and CPU time of one ffmpeg run.
#[derive(Debug, Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

async fn ffmpeg(args: Vec<OsString>) -> Result<Cost, BoxError> {
    let (cpu, started) = (children_cpu(), Instant::now());
    Supervised::new("ffmpeg", Deadline::after(Duration::from_secs(6 * 3600)))
        .args(args)
        .run()
        .await?;
    Ok(Cost {
        wall: started.elapsed(),
        cpu: children_cpu().saturating_sub(cpu),
    })
}

/// The costs of rendering `source` in segments under `profile`.
struct Segmented {
    plan: Duration,
    /// The video segments, then the audio segments.
    parts: Vec<Cost>,
    /// The audio each audio segment encoded, with its lead-in and lead-out (seconds).
    audio_seconds: Vec<f64>,
    join: Cost,
    output: PathBuf,
    segments: SegmentPlan,
}

impl Segmented {
    fn cpu(&self) -> Duration {
        self.parts.iter().map(|p| p.cpu).sum::<Duration>() + self.join.cpu
    }

    fn local_wall(&self) -> Duration {
        self.plan + self.parts.iter().map(|p| p.wall).sum::<Duration>() + self.join.wall
    }

    /// Plan + the parts in waves of `concurrency` (each wave as slow as its slowest part) + join.
    fn projected_wall(&self, concurrency: usize) -> Duration {
        let mut walls: Vec<Duration> = self.parts.iter().map(|p| p.wall).collect();
        walls.sort_by(|a, b| b.cmp(a));
        let waves: Duration = walls.chunks(concurrency).map(|wave| wave[0]).sum();
        self.plan + waves + self.join.wall
    }
}

async fn render_segmented(
    profile: &RenditionProfile,
    source: &Path,
    work: &Path,
    cut: Cut,
) -> Result<Segmented, BoxError> {
    let started = Instant::now();
    let info = probe_file(Path::new("ffprobe"), source, Deadline::after(Duration::from_secs(60))).await?;
    let plan = profile.plan(&info).ok_or("the source has no video")?;
    let fps = plan
        .fps_cap
        .or(info.video.as_ref().and_then(|v| v.fps))
        .ok_or("no frame rate")?;
    let rate = FrameRate::from_fps(fps).ok_or("no frame rate")?;
    let segments = SegmentPlan::new(
        info.duration_secs.unwrap_or(0.0),
        rate,
        profile.video.keyframe_interval_secs,
        cut.segment_secs,
        cut.lead_in_secs,
        cut.lead_out_secs,
    );
    let plan_time = started.elapsed();
    let mut parts = Vec::new();
    let appended = work.join(format!("{}-video.ts", profile.name));
    let mut bytes = Vec::new();
    for segment in &segments.segments {
        let dir = work.join(format!("{}-{}", profile.name, segment.index));
        std::fs::create_dir_all(&dir)?;
        let command = segment_command(profile, &plan, rate, segment, source.as_os_str(), &dir);
        parts.push(ffmpeg(command.args).await?);
        bytes.extend(std::fs::read(&command.output)?);
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::write(&appended, bytes)?;
    let audio_segments = audio_segments(
        profile,
        info.audio.as_ref().ok_or("the source has no sound")?,
        DEFAULT_AUDIO_SEGMENT_SECS,
        cut.lead_in_secs,
        cut.lead_out_secs,
    )?;
    let mut frames = Vec::new();
    let encoded = work.join(format!("{}-audio-part.aac", profile.name));
    let rate = profile.audio.sample_rate;
    let audio_end = info.audio.as_ref().and_then(|a| a.duration_secs).unwrap_or(0.0);
    let audio_seconds = audio_segments
        .iter()
        .map(|s| {
            let own_end = s
                .frames
                .map_or(audio_end, |frames| aac_frames_secs(s.first_frame + frames, rate));
            own_end - s.start_secs(rate) + aac_frames_secs(s.lead_in_frames + s.lead_out_frames, rate)
        })
        .collect();
    for segment in &audio_segments {
        parts.push(ffmpeg(audio_segment_args(profile, segment, source.as_os_str(), &encoded)).await?);
        frames.extend(keep_audio_frames(&std::fs::read(&encoded)?, segment)?);
    }
    let audio = work.join(format!("{}-audio.aac", profile.name));
    std::fs::write(&audio, frames)?;
    let output = work.join(format!("{}-segmented.mp4", profile.name));
    let join = ffmpeg(join_args(profile, &appended, Some(&audio), &output)).await?;
    Ok(Segmented {
        plan: plan_time,
        parts,
        audio_seconds,
        join,
        output,
        segments,
    })
}

/// Per-frame PSNR (average of the planes) of `rendition` against `source` scaled to its size.
async fn psnr_against_source(rendition: &Path, source: &Path, work: &Path) -> Result<Vec<f64>, BoxError> {
    let stats = work.join("psnr.log");
    let filter = format!(
        "[1:v][0:v]scale2ref=flags=bicubic[src][out];[out][src]psnr=stats_file={}",
        stats.display()
    );
    let args: Vec<OsString> = ["-nostdin", "-v", "error", "-i"]
        .map(OsString::from)
        .into_iter()
        .chain([
            rendition.as_os_str().to_owned(),
            "-i".into(),
            source.as_os_str().to_owned(),
        ])
        .chain(["-lavfi", &filter, "-f", "null", "-"].map(OsString::from))
        .collect();
    ffmpeg(args).await?;
    let text = std::fs::read_to_string(&stats)?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_whitespace().find_map(|f| f.strip_prefix("psnr_avg:")))
        .map(|v| v.parse().unwrap_or(100.0))
        .collect())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// How the segments are cut (seconds of output time).
#[derive(Debug, Clone, Copy)]
struct Cut {
    segment_secs: f64,
    lead_in_secs: f64,
    lead_out_secs: f64,
}

/// Seconds from the environment variable `name`, or `default`.
fn secs_from_env(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

pub async fn figures(work: &Path) -> Result<(), BoxError> {
    let seconds = secs_from_env("BENCH_SEGMENTED_SECONDS", 600.0);
    let cut = Cut {
        segment_secs: secs_from_env("BENCH_SEGMENT_SECONDS", DEFAULT_SEGMENT_SECS),
        lead_in_secs: secs_from_env("BENCH_SEGMENT_LEAD_IN_SECS", DEFAULT_LEAD_IN_SECS),
        lead_out_secs: secs_from_env("BENCH_SEGMENT_LEAD_OUT_SECS", DEFAULT_LEAD_OUT_SECS),
    };
    println!(
        "== segmented rendering vs single pass (1080p profile; a {seconds} s 1920x1080 30 fps source with sound, made with ffmpeg; {} s segments, {} s lead-in, {} s lead-out)",
        cut.segment_secs, cut.lead_in_secs, cut.lead_out_secs
    );
    let work = work.join("segmented");
    std::fs::create_dir_all(&work)?;
    let source = work.join("source.mp4");
    let spec = SampleSpec {
        width: 1920,
        height: 1080,
        fps: 30,
        seconds,
        with_audio: true,
    };
    make_sample(spec, &source).await?;

    let profile = RenditionProfile::built_in("1080p").ok_or("no 1080p profile")?;
    let info = probe_file(Path::new("ffprobe"), &source, Deadline::after(Duration::from_secs(60))).await?;
    let plan = profile.plan(&info).ok_or("the source has no video")?;
    let single_path = work.join("1080p-single.mp4");
    let single = ffmpeg(profile.ffmpeg_args(&plan, &source, &single_path)).await?;
    let segmented = render_segmented(&profile, &source, &work, cut).await?;
    let cpu_ratio = secs(segmented.cpu()) / secs(single.cpu);
    println!(
        "  CPU: segmented {:.1} s, single pass {:.1} s: segmented/single = {cpu_ratio:.3}x (goal <= 1.10x)",
        secs(segmented.cpu()),
        secs(single.cpu)
    );
    println!(
        "  wall on this machine (2 cores, parts one after another): segmented {:.1} s, single pass {:.1} s",
        secs(segmented.local_wall()),
        secs(single.wall)
    );
    let slowest = segmented.parts.iter().map(|p| p.wall).max().unwrap_or_default();
    println!(
        "  parts: {} segments + {} audio segments; slowest part {:.1} s; plan {:.2} s; join {:.1} s",
        segmented.segments.segments.len(),
        segmented.audio_seconds.len(),
        secs(slowest),
        secs(segmented.plan),
        secs(segmented.join.wall)
    );
    for concurrency in [INLINE_MAP_CONCURRENCY, TEMPLATE_CONCURRENCY] {
        println!(
            "  projected AWS wall at {concurrency}-way: {:.1} s (single pass {:.1} s: {:.1}x faster; Lambda start-up and Step Functions transitions not included)",
            secs(segmented.projected_wall(concurrency)),
            secs(single.wall),
            secs(single.wall) / secs(segmented.projected_wall(concurrency))
        );
    }

    // Join quality: both outputs against the source, frame by frame.
    let single_psnr = psnr_against_source(&single_path, &source, &work).await?;
    let segmented_psnr = psnr_against_source(&segmented.output, &source, &work).await?;
    let joins: Vec<usize> = segmented.segments.segments[1..]
        .iter()
        .map(|s| s.first_frame as usize)
        .collect();
    let near_a_join = |frame: usize| joins.iter().any(|join| frame + 2 >= *join && frame < join + 2);
    let worst_drop = single_psnr
        .iter()
        .zip(&segmented_psnr)
        .enumerate()
        .filter(|(frame, _)| near_a_join(*frame))
        .map(|(_, (single, segmented))| single - segmented)
        .fold(f64::MIN, f64::max);
    let worst_anywhere = single_psnr
        .iter()
        .zip(&segmented_psnr)
        .map(|(single, segmented)| single - segmented)
        .fold(f64::MIN, f64::max);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "  join quality: frames {} / {} (segmented / single); mean PSNR vs source {:.2} / {:.2} dB; largest drop at the {} joins (±2 frames) {:.2} dB (goal <= 0.5 dB), at any frame {:.2} dB",
        segmented_psnr.len(),
        single_psnr.len(),
        mean(&segmented_psnr),
        mean(&single_psnr),
        joins.len(),
        worst_drop,
        worst_anywhere
    );

    // A 60-minute source to 720p, projected from this run's 720p parts.
    let profile_720 = RenditionProfile::built_in("720p").ok_or("no 720p profile")?;
    let segmented_720 = render_segmented(&profile_720, &source, &work, cut).await?;
    let scale = 3600.0 / seconds;
    let (video_parts, audio_parts) = segmented_720
        .parts
        .split_at(segmented_720.parts.len() - segmented_720.audio_seconds.len());
    let slowest_segment = video_parts.iter().map(|p| p.wall).max().unwrap_or_default();
    // An audio segment of the full length, at the slowest rate an audio part of this run
    // encoded at (a source shorter than two audio segments has only shorter ones).
    let full_audio_segment = DEFAULT_AUDIO_SEGMENT_SECS + cut.lead_in_secs + cut.lead_out_secs;
    let slowest_audio = audio_parts
        .iter()
        .zip(&segmented_720.audio_seconds)
        .map(|(part, seconds)| part.wall.mul_f64(full_audio_segment / seconds.max(1.0)))
        .max()
        .unwrap_or_default();
    let parts_60 = (3600.0 / cut.segment_secs).ceil() as usize + (3600.0 / DEFAULT_AUDIO_SEGMENT_SECS).ceil() as usize;
    for concurrency in [INLINE_MAP_CONCURRENCY, TEMPLATE_CONCURRENCY] {
        let waves = parts_60.div_ceil(concurrency) as u32;
        // Each wave as slow as the slowest part of either kind; the join grows with the length.
        let projected =
            segmented_720.plan + slowest_segment.max(slowest_audio) * waves + segmented_720.join.wall.mul_f64(scale);
        println!(
            "  60-minute 1080p -> 720p projected at {concurrency}-way: {:.1} s = plan {:.2} s + {waves} wave{} of {parts_60} parts (slowest 720p segment {:.1} s, slowest audio segment {:.1} s for {full_audio_segment} s) + join ({:.1} s, scaled) (goal <= 60 s at <= 100-way; the Step Functions sample: 230 s)",
            secs(projected),
            secs(segmented_720.plan),
            if waves == 1 { "" } else { "s" },
            secs(slowest_segment),
            secs(slowest_audio),
            secs(segmented_720.join.wall.mul_f64(scale))
        );
    }
    for file in std::fs::read_dir(&work)? {
        std::fs::remove_file(file?.path())?;
    }
    Ok(())
}
