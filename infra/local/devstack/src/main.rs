//! `devstack demo`: the whole pipeline on the local stack with a sample video.
//!
//! Generates a 1080p sample with ffmpeg, uploads it under a key with a space and a `+`,
//! watches the results topic while the 720p and 1080p renditions are made (progress on the
//! terminal), then checks each output with ffprobe and prints where it is. Then the GIF API:
//! a signed `convert` of the same sample (a presigned link to it in the local S3), progress
//! from `get_task_status`, and the GIF link it answers with, fetched and checked.

mod clip_demo;

use std::io::Write;
use std::time::Duration;

use devstack::gif::{download, presigned_get, GifApi};
use devstack::{make_sample, upload, BoxError, Clients, SampleSpec, StackOutputs, Tap};
use shared::contracts::{PipelineResult, ResultStatus};
use shared::ffmpeg::Deadline;

#[tokio::main]
async fn main() {
    let command = std::env::args().nth(1).unwrap_or_default();
    let outcome = match command.as_str() {
        "demo" => demo().await,
        _ => Err("usage: devstack demo".into()),
    };
    if let Err(err) = outcome {
        eprintln!("devstack {command}: {err}");
        std::process::exit(1);
    }
}

async fn demo() -> Result<(), BoxError> {
    let outputs = StackOutputs::load()?;
    let clients = Clients::from_env().await;
    let source_bucket = outputs.get("SourceBucketName");
    let output_bucket = outputs.get("OutputBucketName");

    let work = devstack::repo_root().join(".local/demo");
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
        "1/6  making a {}x{} {} s sample video with ffmpeg (lavfi testsrc2 + sine)",
        spec.width, spec.height, spec.seconds
    );
    make_sample(spec, &sample).await?;

    let key = format!("uploads/demo {}/my demo+clip.mp4", devstack::unique_suffix());
    let tap = Tap::subscribe(&clients, outputs.get("ResultsTopicArn"), "demo").await?;
    println!("2/6  uploading to s3://{source_bucket}/{key}");
    upload(&clients.s3, source_bucket, &key, &sample).await?;

    println!("3/6  waiting for the 720p and 1080p renditions (results topic)");
    let expected = ["720p", "1080p"];
    let results = tap
        .collect_results(
            Duration::from_secs(300),
            |r| r.source.key == key,
            |rs| {
                expected
                    .iter()
                    .all(|p| rs.iter().any(|r| r.profile.as_deref() == Some(*p)))
                    || rs.iter().any(|r| r.status != ResultStatus::Available)
            },
            |rs, elapsed| {
                let state = |profile: &str| match rs.iter().find(|r| r.profile.as_deref() == Some(profile)) {
                    Some(r) => r.status.as_str().to_owned(),
                    None => "working…".to_owned(),
                };
                print!(
                    "\r     {:>5.1} s   720p: {:<10} 1080p: {:<10}",
                    elapsed.as_secs_f64(),
                    state("720p"),
                    state("1080p")
                );
                let _ = std::io::stdout().flush();
            },
        )
        .await;
    println!();
    tap.close().await;
    let results = results?;

    println!("4/6  checking the outputs with ffprobe");
    let mut failures = Vec::new();
    for result in &results {
        let profile = result.profile.clone().unwrap_or_default();
        match (&result.status, &result.output) {
            (ResultStatus::Available, Some(output)) => {
                let local = work.join(format!("{profile}.mp4"));
                shared::storage::download_to_file(&clients.s3, &output.bucket, &output.key, &local).await?;
                let info =
                    shared::probe::probe_file("ffprobe".as_ref(), &local, Deadline::after(Duration::from_secs(30)))
                        .await?;
                let video = info.require_video()?;
                println!(
                    "     {profile:>5}: {}x{} {} {:.2} s, audio {}, {} bytes\n            s3://{}/{}\n            {}",
                    video.width,
                    video.height,
                    video.codec,
                    info.duration_secs.unwrap_or(0.0),
                    info.audio.as_ref().map(|a| a.codec.as_str()).unwrap_or("none"),
                    output.bytes,
                    output_bucket,
                    output.key,
                    local.display()
                );
            }
            _ => failures.push(describe(result)),
        }
    }
    if !failures.is_empty() {
        return Err(format!("the pipeline did not deliver: {}", failures.join("; ")).into());
    }
    println!("     both renditions are in s3://{output_bucket}/renditions/ and checked with ffprobe");
    gif(&outputs, &clients, source_bucket, &key, &work).await?;
    println!();
    clip_demo::run(&outputs, &clients, &work).await?;
    println!("done");
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
    println!("5/6  GIF API at {} (AWS_IAM, SigV4-signed):", api.url);
    println!("     {{\"action\":\"convert\",\"src_url\":\"<presigned link to the sample>\",\"start\":1,\"duration\":3,\"width\":480,\"fps\":12}}");
    let task_id = api.convert(request).await?;
    println!("     task {task_id}");
    let answer = api
        .wait(&task_id, Duration::from_secs(180), |answer| {
            print!(
                "\r     get_task_status: {:<8} {:>3}%",
                answer["status"].as_str().unwrap_or("?"),
                answer["progress"].as_u64().unwrap_or(100)
            );
            let _ = std::io::stdout().flush();
        })
        .await;
    println!();
    let answer = answer?;
    if answer["status"] != "DONE" {
        return Err(format!("the GIF task did not finish: {answer}").into());
    }
    let link = answer["gif_url"].as_str().ok_or("no gif_url")?;
    let (status, bytes) = download(link).await?;
    if status != 200 {
        return Err(format!("the GIF link answered {status}").into());
    }
    let local = work.join("demo.gif");
    std::fs::write(&local, &bytes)?;
    let info =
        gif_converter::gif::inspect_gif("ffprobe".as_ref(), &local, Deadline::after(Duration::from_secs(30))).await?;
    println!(
        "6/6  GIF: {}x{}, {} frames, {} bytes (two-pass palette), link valid {} s:\n     {link}\n     {}",
        info.width,
        info.height,
        info.frames,
        bytes.len(),
        answer["link_expires_in"],
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
