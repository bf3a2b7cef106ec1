//! `make bench`: each figure measured beside its baseline in one run, ratios printed.
//! Nothing here is asserted: the machine is shared and timings are noisy.
//!
//! 1. Cold init (process start → first Runtime API `/next`) of each function binary, against a
//!    Python 3 + boto3 bootstrap doing the same client set-up, started the same way.
//! 2. Peak RSS of the rendition worker process (ffmpeg is a child and not counted) for a 10 MB
//!    and a 500 MB source.
//! 3. Rendition worker wall time (download + probe + transcode + upload + publish) against the
//!    raw ffmpeg command it runs, on the same file.
//! 4. Clip trimmer: bytes read per clip byte, smart cut against full re-encode, thumbnail time
//!    deep into a recording against near its start ([`clips`]).
//! 5. GIF: the converter's two-pass palette GIF (palettegen + paletteuse) against a one-pass GIF
//!    (ffmpeg's generic palette) at the same size and frame rate: time, bytes, and SSIM
//!    against the source frames (ffmpeg's `ssim` filter, frames paired by index).
//! 6. Local MediaConvert job time (CreateJob → COMPLETE: download, probe, transcode, upload,
//!    events) for seed 001's template against the raw ffmpeg command the job runs, on the same
//!    file.
//! 7. Segmented rendering against the single pass of the same profile: CPU-seconds, local wall,
//!    projected AWS wall at the template's concurrency and at 100, PSNR drop at the joins
//!    ([`segmented`]; without the stack).
//!
//! The function binaries are the Lambda builds from `sam build` (`.local/sam-build`), run under
//! a stand-in Runtime API ([`harness::runtime_api`]) against the local stack's S3/SNS/SQS.

mod clips;
mod runtime_api;
mod segmented;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::runtime_api::FakeRuntimeApi;
use aws_sdk_mediaconvert::types::JobStatus;
use gif_converter::gif;
use harness::{make_sample, repo_root, upload_notice, BoxError, Clients, SampleSpec, StackOutputs};
use shared::contracts::UploadNotice;
use shared::ffmpeg::{Deadline, Supervised};
use shared::gif::GifParams;
use shared::profiles::RenditionProfile;
use tokio::process::Command;

const COLD_RUNS: usize = 15;

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("bench: {err}");
        std::process::exit(1);
    }
}

struct Bench {
    root: PathBuf,
    outputs: StackOutputs,
    clients: Clients,
    work: PathBuf,
}

async fn run() -> Result<(), BoxError> {
    // What the functions' libraries log when run in-process (RUST_LOG; warnings by default).
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    shared::logging::init();
    let root = repo_root();
    let work = harness::local_dir().join("bench");
    std::fs::create_dir_all(&work)?;
    let bench = Bench {
        outputs: StackOutputs::load()?,
        clients: Clients::from_env().await,
        work,
        root,
    };
    // `bench [SECTION...]` runs only the named sections (`make bench SECTIONS="clips"`).
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let run = |section: &str| wanted.is_empty() || wanted.iter().any(|w| w == section);
    if run("cold-init") {
        bench.cold_init().await?;
    }
    if run("rss") {
        bench.peak_rss().await?;
    }
    if run("overhead") {
        bench.overhead_over_ffmpeg().await?;
    }
    if run("clips") {
        clips::figures(&bench.outputs, &bench.clients, &bench.work).await?;
    }
    if run("gif") {
        bench.gif_two_pass_vs_one_pass().await?;
    }
    if run("mediaconvert") {
        bench.mediaconvert_over_ffmpeg().await?;
    }
    if run("segmented") {
        segmented::figures(&bench.work).await?;
    }
    Ok(())
}

impl Bench {
    fn binary(&self, function: &str) -> PathBuf {
        self.root
            .join(local_services::stack_setting("SAM_BUILD_DIR").unwrap_or(".local/sam-build"))
            .join(function)
            .join("bootstrap")
    }

    fn publisher_env(&self) -> Vec<(String, String)> {
        vec![
            ("UPLOADS_TOPIC_ARN".into(), self.outputs.get("UploadsTopicArn").into()),
            ("RESULTS_TOPIC_ARN".into(), self.outputs.get("ResultsTopicArn").into()),
        ]
    }

    fn worker_env(&self) -> Vec<(String, String)> {
        vec![
            ("RENDITION_PROFILE".into(), "720p".into()),
            ("OUTPUT_BUCKET".into(), self.outputs.get("OutputBucketName").into()),
            ("RESULTS_TOPIC_ARN".into(), self.outputs.get("ResultsTopicArn").into()),
            (
                "DEAD_LETTER_QUEUE_URL".into(),
                self.outputs.get("Rendition720DeadLetterQueueUrl").into(),
            ),
            ("FFMPEG_PATH".into(), "ffmpeg".into()),
            ("FFPROBE_PATH".into(), "ffprobe".into()),
            ("WORK_DIR".into(), self.work.display().to_string()),
            ("RUST_LOG".into(), "warn".into()),
        ]
    }

    /// Starts `program` as Lambda would: Runtime API address and function identity in the
    /// environment, stdin closed.
    fn spawn(
        &self,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        api: &FakeRuntimeApi,
    ) -> std::io::Result<tokio::process::Child> {
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().cloned())
            .env("AWS_LAMBDA_RUNTIME_API", api.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        command.spawn()
    }

    async fn cold_once(&self, program: &Path, args: &[&str], env: &[(String, String)]) -> Result<Duration, BoxError> {
        let api = FakeRuntimeApi::start().await?;
        let started = Instant::now();
        let mut child = self.spawn(program, args, env, &api)?;
        let first = api
            .wait_for_first_next(Duration::from_secs(30))
            .await
            .ok_or_else(|| format!("{} never asked for work", program.display()))?;
        child.kill().await?;
        Ok(first - started)
    }

    async fn cold_init(&self) -> Result<(), BoxError> {
        println!("== cold init: process start → first Runtime API /next (median of {COLD_RUNS})");
        let python = self.root.join(".venv/bin/python");
        let baseline = self.root.join("infra/local/bench/python_baseline_bootstrap.py");
        let baseline = baseline.to_str().unwrap();
        for (label, function, role, env) in [
            (
                "upload-publisher",
                "UploadPublisherFunction",
                "publisher",
                self.publisher_env(),
            ),
            ("rendition-worker", "Rendition720Function", "worker", self.worker_env()),
        ] {
            let binary = self.binary(function);
            let (mut rust, mut py) = (Vec::new(), Vec::new());
            for _ in 0..COLD_RUNS {
                // Interleaved, so a burst of load on the machine hits both alike.
                rust.push(self.cold_once(&binary, &[], &env).await?);
                py.push(self.cold_once(&python, &[baseline, role], &env).await?);
            }
            let (rust, py) = (median(&mut rust), median(&mut py));
            println!(
                "   {label:<17} rust {:>7.1} ms   python+boto3 {:>7.1} ms   python/rust = {:>5.1}x   (goal: ≥ 20x, rust ≤ 25 ms)",
                ms(rust),
                ms(py),
                py.as_secs_f64() / rust.as_secs_f64()
            );
        }
        Ok(())
    }

    /// Uploads a bench input under a key the upload publisher rejects (`.bench`), so that the
    /// deployed workers do not transcode it at the same time and skew the figures.
    async fn stage(&self, local: &Path, name: &str) -> Result<UploadNotice, BoxError> {
        let bucket = self.outputs.get("SourceBucketName");
        let key = format!("bench/{name}.bench");
        let size = shared::storage::upload_file(&self.clients.s3, local, bucket, &key, &Default::default()).await?;
        Ok(upload_notice(bucket, &key, size, None))
    }

    /// One invocation of a fresh worker process; returns its wall time and peak RSS (VmHWM).
    async fn run_worker(&self, notice: &UploadNotice) -> Result<(Duration, u64), BoxError> {
        let api = FakeRuntimeApi::start().await?;
        let mut child = self.spawn(&self.binary("Rendition720Function"), &[], &self.worker_env(), &api)?;
        let pid = child.id().ok_or("worker exited at once")?;
        api.wait_for_first_next(Duration::from_secs(30))
            .await
            .ok_or("worker never asked for work")?;
        let event = serde_json::json!({"Records": [{
            "messageId": "bench-message", "receiptHandle": "bench", "body": serde_json::to_string(notice)?,
            "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench", "awsRegion": "us-east-1"
        }]});
        let (elapsed, response) = api.invoke(&event).await?;
        let failures = response["batchItemFailures"].as_array().map(Vec::len).unwrap_or(0);
        if failures > 0 {
            return Err(format!("the worker failed the message: {response}").into());
        }
        let hwm = peak_rss_kib(pid)?;
        child.kill().await?;
        Ok((elapsed, hwm))
    }

    async fn peak_rss(&self) -> Result<(), BoxError> {
        println!("== peak RSS of the rendition worker process (ffmpeg excluded), 720p profile");
        let mut figures = Vec::new();
        for megabytes in [10u64, 500] {
            // Raw 640x360 yuv420p video: the size is exact and making it costs nothing.
            let frame_bytes = 640 * 360 * 3 / 2;
            let frames = megabytes * 1_000_000 / frame_bytes;
            let local = self.work.join(format!("raw-{megabytes}mb.mkv"));
            if !local.exists() {
                Supervised::new("ffmpeg", Deadline::after(Duration::from_secs(300)))
                    .args(shared::ffmpeg::ffmpeg_base_args())
                    .args([
                        "-f",
                        "lavfi",
                        "-i",
                        "testsrc2=size=640x360:rate=30,format=yuv420p",
                        "-frames:v",
                        &frames.to_string(),
                    ])
                    .args(["-c:v", "rawvideo", "-f", "matroska"])
                    .arg(&local)
                    .run()
                    .await?;
            }
            let notice = self.stage(&local, &format!("raw-{megabytes}mb.mkv")).await?;
            let (elapsed, hwm) = self.run_worker(&notice).await?;
            println!(
                "   {:>4} MB source ({} bytes): peak RSS {:>6.1} MB, invocation {:.1} s",
                megabytes,
                notice.size,
                hwm as f64 / 1024.0,
                elapsed.as_secs_f64()
            );
            figures.push(hwm);
        }
        println!(
            "   growth 10 MB → 500 MB: {:+.1} MB   (goal: ≤ 10 MB)",
            (figures[1] as f64 - figures[0] as f64) / 1024.0
        );
        Ok(())
    }

    async fn overhead_over_ffmpeg(&self) -> Result<(), BoxError> {
        println!("== rendition worker wall time / raw ffmpeg on the same file (1080p 20 s source → 720p)");
        let local = self.work.join("hd-20s.mp4");
        if !local.exists() {
            make_sample(
                SampleSpec {
                    width: 1920,
                    height: 1080,
                    fps: 30,
                    seconds: 20.0,
                    with_audio: true,
                },
                &local,
            )
            .await?;
        }
        let notice = self.stage(&local, "hd-20s.mp4").await?;
        let profile = RenditionProfile::built_in("720p").unwrap();
        let info =
            shared::probe::probe_file(Path::new("ffprobe"), &local, Deadline::after(Duration::from_secs(30))).await?;
        let plan = profile.plan(&info).ok_or("no video")?;
        let output = self.work.join("raw-ffmpeg-out.mp4");
        let args = profile.ffmpeg_args(&plan, &local, &output);
        let (mut raw, mut worker) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let started = Instant::now();
            Supervised::new("ffmpeg", Deadline::after(Duration::from_secs(600)))
                .args(&args)
                .run()
                .await?;
            raw.push(started.elapsed());
            worker.push(self.run_worker(&notice).await?.0);
        }
        let (raw, worker) = (median(&mut raw), median(&mut worker));
        println!(
            "   raw ffmpeg {:.2} s   worker {:.2} s   worker/ffmpeg = {:.3}   (goal: ≤ 1.05)",
            raw.as_secs_f64(),
            worker.as_secs_f64(),
            worker.as_secs_f64() / raw.as_secs_f64()
        );
        Ok(())
    }
}

impl Bench {
    async fn gif_two_pass_vs_one_pass(&self) -> Result<(), BoxError> {
        let params = GifParams {
            start_secs: 0.5,
            duration_secs: 5.0,
            width: 480,
            fps: 12,
        };
        println!(
            "== GIF: two-pass palette vs one pass (720p testsrc2 source → {} px, {} fps, {} s; median of 3)",
            params.width, params.fps, params.duration_secs
        );
        let source = self.work.join("gif-source-720p.mp4");
        if !source.exists() {
            make_sample(
                SampleSpec {
                    width: 1280,
                    height: 720,
                    fps: 30,
                    seconds: 6.0,
                    with_audio: false,
                },
                &source,
            )
            .await?;
        }
        let deadline = || Deadline::after(Duration::from_secs(300));
        let palette = self.work.join("gif-palette.png");
        let two_pass = self.work.join("gif-two-pass.gif");
        let one_pass = self.work.join("gif-one-pass.gif");
        let (mut two_times, mut one_times) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let started = Instant::now();
            Supervised::new("ffmpeg", deadline())
                .args(gif::palette_args(&source, &params, &palette))
                .run()
                .await?;
            Supervised::new("ffmpeg", deadline())
                .args(gif::gif_args(&source, &params, &palette, &two_pass))
                .run()
                .await?;
            two_times.push(started.elapsed());
            let started = Instant::now();
            Supervised::new("ffmpeg", deadline())
                .args(gif::one_pass_gif_args(&source, &params, &one_pass))
                .run()
                .await?;
            one_times.push(started.elapsed());
        }
        let (two_time, one_time) = (median(&mut two_times), median(&mut one_times));
        let (two_bytes, one_bytes) = (std::fs::metadata(&two_pass)?.len(), std::fs::metadata(&one_pass)?.len());
        let (two_ssim, one_ssim) = (
            self.ssim_against_source(&two_pass, &source, &params).await?,
            self.ssim_against_source(&one_pass, &source, &params).await?,
        );
        let frames = gif::inspect_gif(Path::new("ffprobe"), &two_pass, deadline())
            .await?
            .frames;
        println!(
            "   two-pass  {:>6.2} s  {:>9} bytes  SSIM {:.4}   ({frames} frames)",
            two_time.as_secs_f64(),
            two_bytes,
            two_ssim
        );
        println!(
            "   one-pass  {:>6.2} s  {:>9} bytes  SSIM {:.4}",
            one_time.as_secs_f64(),
            one_bytes,
            one_ssim
        );
        println!(
            "   two/one   time {:.2}x   bytes {:.2}x   SSIM {:+.4} ({:.3}x)",
            two_time.as_secs_f64() / one_time.as_secs_f64(),
            two_bytes as f64 / one_bytes as f64,
            two_ssim - one_ssim,
            two_ssim / one_ssim
        );
        Ok(())
    }

    /// Mean SSIM (all planes) of `gif` against the same segment of `source` at the same fps and
    /// size, frames paired by index (GIF timestamps are in centiseconds and drift).
    async fn ssim_against_source(&self, gif: &Path, source: &Path, params: &GifParams) -> Result<f64, BoxError> {
        let stats = self.work.join("gif-ssim.log");
        let graph = format!(
            "[0:v]format=yuv444p,setpts=N/({fps}*TB)[gif];\
             [1:v]{scale},format=yuv444p,setpts=N/({fps}*TB)[ref];\
             [gif][ref]ssim=shortest=1:stats_file={stats}",
            fps = params.fps,
            scale = gif::scale_filter(params),
            stats = stats.display()
        );
        Supervised::new("ffmpeg", Deadline::after(Duration::from_secs(300)))
            .args(shared::ffmpeg::ffmpeg_base_args())
            .arg("-i")
            .arg(gif)
            .args([
                "-ss",
                &params.start_secs.to_string(),
                "-t",
                &params.duration_secs.to_string(),
                "-i",
            ])
            .arg(source)
            .args(["-lavfi", &graph, "-f", "null", "-"])
            .run()
            .await?;
        let text = std::fs::read_to_string(&stats)?;
        let values: Vec<f64> = text
            .lines()
            .filter_map(|line| line.split_whitespace().find_map(|f| f.strip_prefix("All:")))
            .filter_map(|v| v.parse().ok())
            .collect();
        if values.is_empty() {
            return Err(format!("no SSIM figures in {}", stats.display()).into());
        }
        Ok(values.iter().sum::<f64>() / values.len() as f64)
    }
}

impl Bench {
    async fn mediaconvert_over_ffmpeg(&self) -> Result<(), BoxError> {
        println!("== local MediaConvert job / raw ffmpeg for the same outputs (seed 001 hd-sd: H.265 + AV1 256x144, 720p 10 s source)");
        let local = self.work.join("mc-720p-10s.mp4");
        if !local.exists() {
            make_sample(
                SampleSpec {
                    width: 1280,
                    height: 720,
                    fps: 30,
                    seconds: 10.0,
                    with_audio: true,
                },
                &local,
            )
            .await?;
        }
        let notice = self.stage(&local, "mc-720p-10s.mp4").await?;
        // A pipeline name no rule matches: the bench's jobs are not answered on the results topic.
        let config = mediaconvert_submitter::Config::from_env(shared::config::EnvReader::from_pairs([
            ("MEDIACONVERT_TEMPLATE", "hd-sd"),
            ("MEDIACONVERT_QUEUE_ARN", self.outputs.get("MediaConvertQueueArn")),
            ("MEDIACONVERT_ROLE_ARN", self.outputs.get("MediaConvertRoleArn")),
            ("OUTPUT_BUCKET", self.outputs.get("OutputBucketName")),
            ("SOURCE_PREFIX", "bench/"),
            ("PIPELINE_NAME", "bench"),
            ("RESULTS_TOPIC_ARN", self.outputs.get("ResultsTopicArn")),
        ]))?;
        let submitter =
            mediaconvert_submitter::Submitter::new(config, self.clients.sns.clone(), self.clients.mediaconvert.clone());
        let mediaconvert = &self.clients.mediaconvert;
        let (mut raw, mut job) = (Vec::new(), Vec::new());
        for run in 0..3 {
            let source = mediaconvert_submitter::SourceObject {
                bucket: notice.bucket.clone(),
                key: notice.key.clone(),
                etag: None,
                // A new token per run: the same token would answer the first run's job.
                version_id: Some(format!("bench-{}-{run}", harness::unique_suffix())),
            };
            let started = Instant::now();
            let id = submitter.submit(&source).await?;
            let status = loop {
                let status = mediaconvert.get_job().id(&id).send().await?.job.and_then(|j| j.status);
                match status {
                    Some(s @ (JobStatus::Complete | JobStatus::Error | JobStatus::Canceled)) => break s,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            let elapsed = started.elapsed();
            if status != JobStatus::Complete {
                return Err(format!("bench job {id} ended {}", status.as_str()).into());
            }
            job.push(elapsed);

            // The same ffmpeg run the job made, from the job's own settings, on local files.
            let endpoint = std::env::var("AWS_ENDPOINT_URL_MEDIACONVERT")?;
            let answer = harness::http::request("GET", &format!("{endpoint}/2017-08-29/jobs/{id}"), &[]).await?;
            let answer: serde_json::Value = serde_json::from_slice(&answer.body)?;
            let request = serde_json::json!({ "role": answer["job"]["role"], "settings": answer["job"]["settings"] });
            let plan = local_services::mediaconvert::settings::plan(&request)
                .map_err(|e| format!("the bench job's settings: {e}"))?;
            let info =
                shared::probe::probe_file(Path::new("ffprobe"), &local, Deadline::after(Duration::from_secs(30)))
                    .await?;
            let video = info.require_video()?;
            let (width, height) = video.display_size();
            let source = local_services::mediaconvert::settings::Source {
                width,
                height,
                has_audio: info.audio.is_some(),
                fps: video.fps.filter(|f| *f > 0.0).unwrap_or(30.0),
            };
            let out = self.work.join("mc-raw");
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out)?;
            let started = Instant::now();
            for group in &plan.groups {
                let (args, _) = group.ffmpeg_args(&local, &source, &out, "raw");
                Supervised::new("ffmpeg", Deadline::after(Duration::from_secs(600)))
                    .args(args)
                    .run()
                    .await?;
            }
            raw.push(started.elapsed());
        }
        let (raw, job) = (median(&mut raw), median(&mut job));
        println!(
            "   raw ffmpeg {:.2} s   local MediaConvert job {:.2} s   job/ffmpeg = {:.3}   (goal: ≤ 1.1)",
            raw.as_secs_f64(),
            job.as_secs_f64(),
            job.as_secs_f64() / raw.as_secs_f64()
        );
        Ok(())
    }
}

fn peak_rss_kib(pid: u32) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
