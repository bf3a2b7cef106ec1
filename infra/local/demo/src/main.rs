//! `demo` (`make demo`): the whole pipeline on the local stack with a sample video.
//!
//! Generates a 1080p sample with ffmpeg, uploads it under a key with a space and a `+` twice:
//! under `uploads/` (a rendition per profile: 480p, 720p, 1080p) and under `mediaconvert-uploads/` (a
//! MediaConvert job from the stack's template, run by the local MediaConvert: `make demo` deploys
//! with a console-exported template, job-templates/mediaconvert/console/vod-hls-ladder.json). Watches the results
//! topic while they are made (progress on the terminal), checks each output with ffprobe, and
//! shows them on the origin server's page (the local CloudFront), whose address it prints. Then
//! the GIF API (a signed `convert` of the same sample through a presigned link, progress, the
//! GIF link, fetched and checked) and the clip trimmer (recordings, a clip across two of them,
//! and one that is pending until its time has come); the page lists those outputs too.

mod clip_demo;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use harness::gif::{download, presigned_get, GifApi};
use harness::{make_sample, origin_url, upload, BoxError, Clients, SampleSpec, StackOutputs, Tap};
use shared::contracts::gif::TaskStatus;
use shared::contracts::{Job, PipelineResult, ResultStatus};
use shared::ffmpeg::Deadline;

#[tokio::main]
async fn main() {
    if let Err(err) = demo().await {
        eprintln!("demo: {err}");
        std::process::exit(1);
    }
}

async fn demo() -> Result<(), BoxError> {
    let outputs = StackOutputs::load()?;
    let clients = Clients::from_env().await;
    let source_bucket = outputs.get("SourceBucketName");
    let output_bucket = outputs.get("OutputBucketName");

    let work = harness::local_dir().join("demo");
    std::fs::create_dir_all(&work)?;
    let sample = work.join("sample.mp4");
    let spec = SampleSpec {
        width: 1920,
        height: 1080,
        fps: 30,
        seconds: 6.0,
        with_audio: true,
    };
    println!(
        "1/5  making a {}x{} {} s sample video with ffmpeg (lavfi testsrc2 + sine)",
        spec.width, spec.height, spec.seconds
    );
    make_sample(spec, &sample).await?;

    let run = harness::unique_suffix();
    let key = format!("uploads/demo {run}/my demo+clip.mp4");
    let mc_key = format!(
        "{}demo {run}/my demo+clip.mp4",
        outputs.get("MediaConvertUploadsPrefix")
    );
    let tap = Tap::subscribe(&clients, outputs.get("ResultsTopicArn"), "demo").await?;
    println!("2/5  uploading to s3://{source_bucket}/{key}\n     and to s3://{source_bucket}/{mc_key}");
    upload(&clients.s3, source_bucket, &key, &sample).await?;
    upload(&clients.s3, source_bucket, &mc_key, &sample).await?;

    let expected = harness::rendition_profiles();
    println!(
        "3/5  waiting for the renditions ({}) and the MediaConvert job ({} template)",
        expected.join(", "),
        outputs.get("MediaConvertTemplate")
    );
    let is_mc = |r: &PipelineResult| r.job == Job::Mediaconvert;
    let results = tap
        .collect_results(
            Duration::from_secs(600),
            |r| r.source.key == key || r.source.key == mc_key,
            |rs| {
                let renditions = expected
                    .iter()
                    .all(|p| rs.iter().any(|r| !is_mc(r) && r.profile.as_deref() == Some(*p)));
                (renditions && rs.iter().any(is_mc)) || rs.iter().any(|r| r.status != ResultStatus::Available)
            },
            |rs, elapsed| {
                let state = |found: Option<&PipelineResult>| match found {
                    Some(r) => r.status.as_str().to_owned(),
                    None => "working…".to_owned(),
                };
                let renditions: String = expected
                    .iter()
                    .map(|p| {
                        let found = rs.iter().find(|r| !is_mc(r) && r.profile.as_deref() == Some(*p));
                        format!("{p}: {:<10} ", state(found))
                    })
                    .collect();
                print!(
                    "\r     {:>5.1} s   {renditions}MediaConvert: {:<10}",
                    elapsed.as_secs_f64(),
                    state(rs.iter().find(|r| is_mc(r))),
                );
                let _ = std::io::stdout().flush();
            },
        )
        .await;
    println!();
    tap.close().await;
    let results = results?;

    println!("4/5  checking the outputs with ffprobe");
    let mut failures = Vec::new();
    let mut shown = Vec::new();
    for result in &results {
        let files: Vec<(String, String, String)> = match (&result.status, &result.output, &result.mediaconvert) {
            (ResultStatus::Available, Some(output), _) => vec![(
                result.profile.clone().unwrap_or_default(),
                output.bucket.clone(),
                output.key.clone(),
            )],
            (ResultStatus::Available, None, Some(job)) => job
                .outputs
                .iter()
                .map(|o| (format!("MediaConvert {}", o.kind), o.bucket.clone(), o.key.clone()))
                .collect(),
            _ => {
                failures.push(describe(result));
                continue;
            }
        };
        for (label, bucket, output_key) in files {
            // A playlist names its segments relative to itself: ffprobe reads it (and them)
            // through the local CloudFront, as a player would; a media file is downloaded.
            let probed = if output_key.ends_with(".m3u8") || output_key.ends_with(".mpd") {
                PathBuf::from(format!("{}{}", origin_url(), local_services::origin::href(&output_key)))
            } else {
                let name = output_key.rsplit('/').next().unwrap_or("output").to_owned();
                let local = work.join(&name);
                shared::storage::download_to_file(&clients.s3, &bucket, &output_key, &local).await?;
                local
            };
            let info = shared::probe::probe_file("ffprobe".as_ref(), &probed, Deadline::after(Duration::from_secs(30)))
                .await?;
            let video = info.require_video()?;
            println!(
                "     {label:>18}: {}x{} {} {:.2} s, audio {}\n                         s3://{bucket}/{output_key}",
                video.width,
                video.height,
                video.codec,
                info.duration_secs.unwrap_or(0.0),
                info.audio.as_ref().map(|a| a.codec.as_str()).unwrap_or("none"),
            );
            shown.push(output_key);
        }
        if let Some(compute) = &result.compute {
            println!(
                "                         compute: {} ms at {} MB = {:.2} GB-s, about ${:.6} at ${}/GB-s",
                compute.billed_ms,
                compute.memory_mb,
                compute.gb_seconds,
                compute.estimated_cost_usd,
                compute.price_per_gb_second
            );
        }
    }
    if !failures.is_empty() {
        return Err(format!("the pipeline did not deliver: {}", failures.join("; ")).into());
    }

    println!();
    gif(&outputs, &clients, source_bucket, &key, &work).await?;
    println!();
    clip_demo::run(&outputs, &clients, &work).await?;
    println!();

    let origin = origin_url();
    println!("5/5  the outputs on the local CloudFront (origin server): {origin}/");
    let page = harness::http::request("GET", &format!("{origin}/"), &[]).await?;
    let page = String::from_utf8_lossy(&page.body);
    for output_key in &shown {
        let escaped = output_key
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;");
        if !page.contains(&escaped) {
            return Err(format!("the page does not list {output_key}").into());
        }
        println!("     {origin}{}", local_services::origin::href(output_key));
    }
    println!("done: renditions in s3://{output_bucket}/renditions/, MediaConvert outputs in s3://{output_bucket}/mediaconvert/, all listed at {origin}/");
    if std::io::stdin().is_terminal() {
        println!("the page stays up until you press Enter (then the stack stops)");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    Ok(())
}

/// The GIF task API on the same sample: convert, watch the progress, follow the link.
async fn gif(
    outputs: &StackOutputs,
    clients: &Clients,
    source_bucket: &str,
    key: &str,
    work: &std::path::Path,
) -> Result<(), BoxError> {
    let api = GifApi::from_outputs(outputs)?;
    let src_url = presigned_get(&clients.s3, source_bucket, key).await?;
    let request = serde_json::json!({
        "action": "convert", "src_url": src_url, "start": 1, "duration": 3, "width": 480, "fps": 12
    });
    println!("gif 1/2  GIF API at {} (AWS_IAM, SigV4-signed):", api.url);
    println!("     {{\"action\":\"convert\",\"src_url\":\"<presigned link to the sample>\",\"start\":1,\"duration\":3,\"width\":480,\"fps\":12}}");
    let task_id = api.convert(request).await?;
    println!("     task {task_id}");
    let answer = api
        .wait(&task_id, Duration::from_secs(180), |answer| {
            print!(
                "\r     get_task_status: {:<8} {:>3}%",
                answer.status.as_str(),
                answer.progress().unwrap_or(100)
            );
            let _ = std::io::stdout().flush();
        })
        .await;
    println!();
    let answer = answer?;
    let gif = match answer.gif() {
        Some(gif) if answer.status == TaskStatus::Done => gif,
        _ => return Err(format!("the GIF task did not finish: {answer:?}").into()),
    };
    let link = gif.gif_url.as_str();
    let (status, bytes) = download(link).await?;
    if status != 200 {
        return Err(format!("the GIF link answered {status}").into());
    }
    let local = work.join("demo.gif");
    std::fs::write(&local, &bytes)?;
    let info =
        gif_converter::gif::inspect_gif("ffprobe".as_ref(), &local, Deadline::after(Duration::from_secs(30))).await?;
    println!(
        "gif 2/2  GIF: {}x{}, {} frames, {} bytes (two-pass palette), link valid {} s:\n     {link}\n     {}",
        info.width,
        info.height,
        info.frames,
        bytes.len(),
        gif.link_expires_in,
        local.display()
    );
    Ok(())
}

fn describe(result: &PipelineResult) -> String {
    let reason = result
        .reason
        .as_ref()
        .map(|r| format!("{}: {}", r.code, r.message))
        .unwrap_or_default();
    format!(
        "{} {}: {}",
        result.profile.as_deref().unwrap_or("?"),
        result.status.as_str(),
        reason
    )
}
