//! End-to-end tests of the MediaConvert path and the CloudFront stand-in on the local stack:
//! S3 upload → `mediaconvert-submitter` (Lambda) → local MediaConvert (ffmpeg) → EventBridge rule →
//! `mediaconvert-results` (Lambda) → results topic; outputs served by the origin server.
//!
//! `#[ignore]`d for a plain `cargo test`: `make test` deploys the stack and runs them.

use std::time::Duration;

use aws_sdk_mediaconvert::types as mc;
use harness::{
    chromium_dom, list_keys, origin_url, unique_suffix, upload, upload_bytes, Clients, SampleSpec, Tap, TestEnv,
};
use mediaconvert_submitter::{Config as SubmitterConfig, SourceObject, Submitter};
use shared::config::EnvReader;
use shared::contracts::{FileKind, Job, PipelineResult, ResultStatus};
use shared::ffmpeg::Deadline;
use shared::Code;

const WAIT: Duration = Duration::from_secs(300);

const SMALL: SampleSpec = SampleSpec {
    width: 640,
    height: 360,
    fps: 30,
    seconds: 2.0,
    with_audio: true,
};

/// A key under the MediaConvert prefix, unique to this run.
fn upload_key(env: &TestEnv, name: &str) -> String {
    format!(
        "{}e2e/{}/{name}",
        env.outputs.get("MediaConvertUploadsPrefix"),
        unique_suffix()
    )
}

/// The submitter's own code, run in the test against the local MediaConvert (the SDK reaches
/// it through `AWS_ENDPOINT_URL_MEDIACONVERT`), configured as the deployed function is.
fn submitter(env: &TestEnv, template: &str) -> Submitter {
    let config = SubmitterConfig::from_env(EnvReader::from_pairs([
        ("MEDIACONVERT_TEMPLATE", template),
        ("MEDIACONVERT_QUEUE_ARN", env.outputs.get("MediaConvertQueueArn")),
        ("MEDIACONVERT_ROLE_ARN", env.outputs.get("MediaConvertRoleArn")),
        ("OUTPUT_BUCKET", env.output_bucket()),
        ("SOURCE_PREFIX", env.outputs.get("MediaConvertUploadsPrefix")),
        ("PIPELINE_NAME", env.outputs.get("PipelineName")),
        ("RESULTS_TOPIC_ARN", env.outputs.get("ResultsTopicArn")),
    ]))
    .unwrap();
    Submitter::new(config, env.clients.sns.clone(), env.clients.mediaconvert.clone())
}

/// Submits the job for `key` of the source bucket with the submitter's code and `template`,
/// as the deployed function would for an upload; returns the job id.
async fn submit(env: &TestEnv, template: &str, key: &str) -> String {
    let source = SourceObject {
        bucket: env.source_bucket().to_owned(),
        key: key.to_owned(),
        etag: None,
        version_id: None,
    };
    submitter(env, template).submit(&source).await.unwrap()
}

/// Waits for the MediaConvert result of `key`.
async fn mediaconvert_result(tap: &Tap, key: &str) -> PipelineResult {
    let key = key.to_owned();
    let mut results = tap
        .collect_results(
            WAIT,
            |r| r.job == Job::Mediaconvert && r.source.key == key,
            |rs| !rs.is_empty(),
            |_, _| {},
        )
        .await
        .unwrap();
    results.remove(0)
}

async fn get_job(clients: &Clients, id: &str) -> mc::Job {
    clients.mediaconvert.get_job().id(id).send().await.unwrap().job.unwrap()
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn an_upload_becomes_the_seed_jobs_hd_h265_and_sd_av1_outputs() {
    let env = TestEnv::load().await;
    let sample = env.sample(SMALL).await;
    let tap = env.results_tap("mc-seed").await;
    let key = upload_key(&env, "my cat+1 é.mp4");
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let result = mediaconvert_result(&tap, &key).await;
    tap.close().await;

    assert_eq!(result.status, ResultStatus::Available, "{result:#?}");
    assert_eq!(result.profile.as_deref(), Some("hd-sd"));
    let job = result.mediaconvert.clone().unwrap();
    let stem = key.trim_end_matches(".mp4");
    let keys: Vec<_> = job.outputs.iter().map(|o| o.key.clone()).collect();
    assert_eq!(
        keys,
        [
            format!("mediaconvert/{stem}-hd.mp4"),
            format!("mediaconvert/{stem}-sd.mp4")
        ]
    );
    for output in &job.outputs {
        assert_eq!(output.bucket, env.output_bucket());
        assert!(output.url.starts_with(&origin_url()), "{}", output.url);
        assert!(
            output.url.contains("my%20cat%2B1%20%C3%A9"),
            "path-encoded: {}",
            output.url
        );
    }

    let hd = env.probe(env.output_bucket(), &keys[0]).await;
    let video = hd.video.as_ref().unwrap();
    assert_eq!((video.codec.as_str(), video.width, video.height), ("hevc", 640, 360));
    let sd = env.probe(env.output_bucket(), &keys[1]).await;
    let video = sd.video.as_ref().unwrap();
    assert_eq!((video.codec.as_str(), video.width, video.height), ("av1", 256, 144));
    for info in [&hd, &sd] {
        let audio = info.audio.as_ref().unwrap();
        assert_eq!(
            (audio.codec.as_str(), audio.sample_rate, audio.channels),
            ("aac", Some(48_000), Some(2))
        );
        assert!((info.duration_secs.unwrap() - 2.0).abs() < 0.2, "{info:?}");
    }
    // QVBR with MaxBitrate 100 kbit/s: the SD video stream stays near its cap.
    let sd_rate = sd.video.as_ref().unwrap().bit_rate.unwrap_or(0);
    assert!(sd_rate > 0 && sd_rate < 150_000, "SD video at {sd_rate} bit/s");

    // The job as GetJob reports it: complete, with the source in its metadata.
    let job = get_job(&env.clients, &job.job_id).await;
    assert_eq!(job.status(), Some(&mc::JobStatus::Complete));
    assert_eq!(job.job_percent_complete(), Some(100));
    assert_eq!(job.user_metadata().unwrap()["sourceKey"], key);
    assert_eq!(job.role(), Some(env.outputs.get("MediaConvertRoleArn")));
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_duplicated_event_does_not_start_a_second_job() {
    let env = TestEnv::load().await;
    let sample = env.sample(SampleSpec { seconds: 1.0, ..SMALL }).await;
    let key = upload_key(&env, "twice over.mp4");
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let head = env.head_source(&key).await;
    let etag = head.e_tag().unwrap().trim_matches('"').to_owned();
    // The S3 record as S3 writes it (key form-encoded), delivered twice.
    let encoded_key = key.replace(' ', "+");
    let record = serde_json::json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T09:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "dup",
               "bucket": {"name": env.source_bucket(), "ownerIdentity": {"principalId": "EXAMPLE"},
                          "arn": format!("arn:aws:s3:::{}", env.source_bucket())},
               "object": {"key": encoded_key, "size": head.content_length().unwrap(), "eTag": etag, "sequencer": "01"}}
    });
    let submitter = submitter(&env, "hd-sd");
    let mut ids = Vec::new();
    for sequencer in ["01", "02"] {
        let mut record = record.clone();
        record["s3"]["object"]["sequencer"] = sequencer.into();
        let event = lambda_runtime::LambdaEvent::new(
            serde_json::json!({ "Records": [record] }),
            lambda_runtime::Context::default(),
        );
        let summary = submitter.handle(event).await.unwrap();
        assert_eq!((summary.rejected, summary.skipped), (0, 0), "{summary:?}");
        ids.extend(summary.submitted);
    }
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "the second delivery found the first job");
    // The upload itself triggered the deployed submitter too, with the same token.
    let source = SourceObject {
        bucket: env.source_bucket().to_owned(),
        key: key.clone(),
        etag: Some(etag),
        version_id: None,
    };
    let mut jobs = Vec::new();
    let mut pages = env.clients.mediaconvert.list_jobs().into_paginator().send();
    while let Some(page) = pages.next().await {
        for job in page.unwrap().jobs().iter().cloned() {
            if job.user_metadata().and_then(|m| m.get("sourceKey")) == Some(&key) {
                jobs.push(job);
            }
        }
    }
    assert_eq!(jobs.len(), 1, "one job for one object version: {jobs:#?}");
    assert_eq!(jobs[0].id(), Some(ids[0].as_str()));
    assert_eq!(
        jobs[0].client_request_token(),
        Some(source.client_request_token().as_str())
    );
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn an_hls_job_writes_a_playable_master_playlist_with_the_ladder() {
    let env = TestEnv::load().await;
    let sample = env
        .sample(SampleSpec {
            width: 1920,
            height: 1080,
            ..SMALL
        })
        .await;
    let key = upload_key(&env, "ladder.mp4");
    // Stored outside the deployed submitter's sight (it runs the hd-sd template); this job is
    // submitted with the HLS template by the submitter's code.
    let hidden_key = format!("e2e-hls/{key}");
    upload(&env.clients.s3, env.source_bucket(), &hidden_key, &sample)
        .await
        .unwrap();
    let tap = env.results_tap("mc-hls").await;
    let job_id = submit(&env, "hls-abr", &hidden_key).await;
    let result = mediaconvert_result(&tap, &hidden_key).await;
    tap.close().await;
    assert_eq!(result.status, ResultStatus::Available, "{result:#?}");
    let outputs = result.mediaconvert.unwrap().outputs;
    let master = outputs
        .iter()
        .find(|o| o.kind == FileKind::Master)
        .expect("a master playlist");
    let folder = hidden_key.rsplit_once('/').unwrap().0;
    assert_eq!(master.key, format!("mediaconvert/{folder}/hls/ladder.m3u8"));
    let variants: Vec<_> = outputs.iter().filter(|o| o.kind == FileKind::Variant).collect();
    let sizes: Vec<_> = variants.iter().map(|v| (v.width.unwrap(), v.height.unwrap())).collect();
    assert_eq!(sizes, [(640, 360), (1280, 720), (1920, 1080)]);

    // Through the origin server, as a player would: the master names three variants, and
    // ffprobe reads every one of them over HTTP.
    let playlist = harness::http::request("GET", &master.url, &[]).await.unwrap();
    assert_eq!(playlist.status, 200);
    assert_eq!(playlist.headers["content-type"], "application/vnd.apple.mpegurl");
    let text = String::from_utf8(playlist.body).unwrap();
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert_eq!(text.matches("#EXT-X-STREAM-INF").count(), 3, "{text}");
    for resolution in ["640x360", "1280x720", "1920x1080"] {
        assert!(text.contains(&format!("RESOLUTION={resolution}")), "{text}");
    }
    let probe = shared::ffmpeg::Supervised::new("ffprobe", Deadline::after(Duration::from_secs(60)))
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "json",
        ])
        .arg(&master.url)
        .run()
        .await
        .unwrap();
    let streams: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let mut heights: Vec<u64> = streams["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_name"] == "h264")
        .map(|s| s["height"].as_u64().unwrap())
        .collect();
    heights.sort();
    assert_eq!(heights, [360, 720, 1080], "{streams}");
    let job = get_job(&env.clients, &job_id).await;
    assert_eq!(job.status(), Some(&mc::JobStatus::Complete));
}

/// `make stack` registers job-templates/mediaconvert/console/ with the local MediaConvert (as
/// `make deploy` does with the account's); the submitter names the template in the job.
#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_console_exported_template_registered_by_name_runs_unchanged() {
    let env = TestEnv::load().await;
    let sample = env.sample(SMALL).await;
    let key = upload_key(&env, "console.mp4");
    // Outside the deployed submitter's sight (it runs hd-sd): submitted by the submitter's code
    // configured with the registered template's name.
    let hidden_key = format!("e2e-console/{key}");
    upload(&env.clients.s3, env.source_bucket(), &hidden_key, &sample)
        .await
        .unwrap();
    let tap = env.results_tap("mc-console").await;
    let job_id = submit(&env, "vod-hls-ladder", &hidden_key).await;
    let result = mediaconvert_result(&tap, &hidden_key).await;
    tap.close().await;
    assert_eq!(result.status, ResultStatus::Available, "{result:#?}");
    assert_eq!(result.profile.as_deref(), Some("vod-hls-ladder"));
    let mediaconvert = result.mediaconvert.unwrap();
    assert!(
        mediaconvert.warnings.iter().any(|w| w.code == 990_001 && w.count > 0),
        "the result counts the settings accepted without local effect: {:?}",
        mediaconvert.warnings
    );
    let outputs = mediaconvert.outputs;
    let master = outputs
        .iter()
        .find(|o| o.kind == FileKind::Master)
        .expect("a master playlist");
    let folder = hidden_key.rsplit_once('/').unwrap().0;
    assert_eq!(
        master.key,
        format!("mediaconvert/{folder}/hls/console.m3u8"),
        "the template's hls/ folder, under this deployment's output"
    );
    let mut heights: Vec<u32> = outputs
        .iter()
        .filter(|o| o.kind == FileKind::Variant)
        .map(|v| v.height.unwrap())
        .collect();
    heights.sort();
    assert_eq!(heights, [144, 216, 288, 360, 432], "the template's five-rung ladder");
    let job = get_job(&env.clients, &job_id).await;
    assert_eq!(job.job_template(), Some("vod-hls-ladder"));
    assert_eq!(job.status(), Some(&mc::JobStatus::Complete));
    let accepted = job.warnings().len();
    assert!(
        accepted > 0,
        "the settings accepted without local effect are listed as warnings"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn an_unsupported_setting_fails_the_job_naming_it_and_the_failure_is_a_result() {
    let env = TestEnv::load().await;
    let sample = env.sample(SampleSpec { seconds: 1.0, ..SMALL }).await;
    let key = format!("e2e-unsupported/{}/interlaced.mp4", unique_suffix());
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let tap = env.results_tap("mc-unsupported").await;
    let settings = mc::JobSettings::builder()
        .inputs(
            mc::Input::builder()
                .file_input(format!("s3://{}/{key}", env.source_bucket()))
                .build(),
        )
        .output_groups(
            mc::OutputGroup::builder()
                .output_group_settings(
                    mc::OutputGroupSettings::builder()
                        .r#type(mc::OutputGroupType::FileGroupSettings)
                        .file_group_settings(
                            mc::FileGroupSettings::builder()
                                .destination(format!("s3://{}/mediaconvert/e2e-unsupported/", env.output_bucket()))
                                .build(),
                        )
                        .build(),
                )
                .outputs(
                    mc::Output::builder()
                        .container_settings(
                            mc::ContainerSettings::builder()
                                .container(mc::ContainerType::Mp4)
                                .build(),
                        )
                        .video_description(
                            mc::VideoDescription::builder()
                                .codec_settings(
                                    mc::VideoCodecSettings::builder()
                                        .codec(mc::VideoCodec::H264)
                                        .h264_settings(
                                            mc::H264Settings::builder()
                                                .rate_control_mode(mc::H264RateControlMode::Qvbr)
                                                .max_bitrate(1_000_000)
                                                .interlace_mode(mc::H264InterlaceMode::TopField)
                                                .build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build();
    let created = env
        .clients
        .mediaconvert
        .create_job()
        .role(env.outputs.get("MediaConvertRoleArn"))
        .queue(env.outputs.get("MediaConvertQueueArn"))
        .settings(settings)
        .user_metadata("pipeline", env.outputs.get("PipelineName"))
        .user_metadata("sourceBucket", env.source_bucket())
        .user_metadata("sourceKey", &key)
        .send()
        .await
        .unwrap();
    let job_id = created.job().unwrap().id().unwrap().to_owned();
    let result = mediaconvert_result(&tap, &key).await;
    tap.close().await;
    let setting = "Settings.OutputGroups[0].Outputs[0].VideoDescription.CodecSettings.H264Settings.InterlaceMode";
    assert_eq!(result.status, ResultStatus::Failed, "{result:#?}");
    let reason = result.reason.unwrap();
    assert_eq!(reason.code, Code::MediaconvertError);
    assert!(reason.message.contains(setting), "{}", reason.message);
    assert_eq!(result.mediaconvert.unwrap().error_code, Some(1030));
    let job = get_job(&env.clients, &job_id).await;
    assert_eq!(job.status(), Some(&mc::JobStatus::Error));
    assert!(job.error_message().unwrap().contains(setting));
    let written = list_keys(
        &env.clients.s3,
        env.output_bucket(),
        "mediaconvert/e2e-unsupported/interlaced",
    )
    .await
    .unwrap();
    assert!(written.is_empty(), "a refused job writes nothing: {written:?}");
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_corrupt_upload_ends_in_error_and_a_failed_result_with_code_and_message() {
    let env = TestEnv::load().await;
    let tap = env.results_tap("mc-error").await;
    let key = upload_key(&env, "broken clip.mp4");
    let mut corrupt = b"\x00\x00\x00\x18ftypmp42".to_vec();
    corrupt.extend((0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    upload_bytes(&env.clients.s3, env.source_bucket(), &key, corrupt)
        .await
        .unwrap();
    let result = mediaconvert_result(&tap, &key).await;
    tap.close().await;
    assert_eq!(result.status, ResultStatus::Failed, "{result:#?}");
    let reason = result.reason.unwrap();
    assert_eq!(reason.code, Code::MediaconvertError);
    assert!(
        reason.message.contains("Unable to open input file"),
        "{}",
        reason.message
    );
    let job = result.mediaconvert.unwrap();
    assert_eq!(job.error_code, Some(1010));
    assert!(job.outputs.is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_canceled_job_is_answered_as_canceled() {
    let env = TestEnv::load().await;
    let sample = env
        .sample(SampleSpec {
            width: 1920,
            height: 1080,
            seconds: 20.0,
            ..SMALL
        })
        .await;
    let key = format!("e2e-cancel/{}/long.mp4", unique_suffix());
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let tap = env.results_tap("mc-cancel").await;
    let job_id = submit(&env, "hd-sd", &key).await;
    env.clients.mediaconvert.cancel_job().id(&job_id).send().await.unwrap();
    let result = mediaconvert_result(&tap, &key).await;
    tap.close().await;
    assert_eq!(result.status, ResultStatus::Canceled, "{result:#?}");
    assert_eq!(
        get_job(&env.clients, &job_id).await.status(),
        Some(&mc::JobStatus::Canceled)
    );
    // A finished job cannot be canceled again.
    assert!(env.clients.mediaconvert.cancel_job().id(&job_id).send().await.is_err());
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn the_origin_serves_objects_by_path_with_ranges_and_content_types() {
    let env = TestEnv::load().await;
    let run = unique_suffix();
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let key = format!("mediaconvert/e2e-origin/{run}/a b+c é.mp4");
    upload_bytes(&env.clients.s3, env.output_bucket(), &key, bytes.clone())
        .await
        .unwrap();
    let url = format!("{}{}", origin_url(), local_services::origin::href(&key));

    let whole = harness::http::request("GET", &url, &[]).await.unwrap();
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, bytes);
    assert_eq!(whole.headers["content-type"], "video/mp4");
    assert_eq!(whole.headers["accept-ranges"], "bytes");
    assert_eq!(whole.headers["content-length"], "10000");

    for (range, first, last) in [
        ("bytes=10-19", 10, 19),
        ("bytes=9990-", 9990, 9999),
        ("bytes=-5", 9995, 9999),
    ] {
        let part = harness::http::request("GET", &url, &[("Range", range)]).await.unwrap();
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(
            part.headers["content-range"],
            format!("bytes {first}-{last}/10000"),
            "{range}"
        );
        assert_eq!(
            part.headers["content-length"],
            (last - first + 1).to_string(),
            "{range}"
        );
        assert_eq!(part.body, bytes[first..=last], "{range}");
    }
    let beyond = harness::http::request("GET", &url, &[("Range", "bytes=20000-")])
        .await
        .unwrap();
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.headers["content-range"], "bytes */10000");
    let head = harness::http::request("HEAD", &url, &[]).await.unwrap();
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.headers["content-length"], "10000");

    for (name, content_type) in [
        ("v.m3u8", "application/vnd.apple.mpegurl"),
        ("v_00001.ts", "video/mp2t"),
        ("thumb.png", "image/png"),
        ("anim.gif", "image/gif"),
    ] {
        let key = format!("clips/e2e-origin/{run}/{name}");
        upload_bytes(&env.clients.s3, env.output_bucket(), &key, b"x".to_vec())
            .await
            .unwrap();
        let got = harness::http::request("GET", &format!("{}/{key}", origin_url()), &[])
            .await
            .unwrap();
        assert_eq!(
            (got.status, got.headers["content-type"].as_str()),
            (200, content_type),
            "{name}"
        );
    }
    let missing = harness::http::request("GET", &format!("{}/mediaconvert/nope-{run}.mp4", origin_url()), &[])
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn the_page_lists_a_jobs_outputs_and_chromium_plays_one() {
    let env = TestEnv::load().await;
    let sample = env.sample(SampleSpec { seconds: 1.0, ..SMALL }).await;
    let tap = env.results_tap("mc-page").await;
    let key = upload_key(&env, "page cat.mp4");
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let result = mediaconvert_result(&tap, &key).await;
    tap.close().await;
    assert_eq!(result.status, ResultStatus::Available, "{result:#?}");
    let outputs = result.mediaconvert.unwrap().outputs;

    // The page follows the results topic on its own; give it a moment to have this result.
    let mut page = String::new();
    for _ in 0..30 {
        page = String::from_utf8(
            harness::http::request("GET", &format!("{}/", origin_url()), &[])
                .await
                .unwrap()
                .body,
        )
        .unwrap();
        let has_status = page.contains(&format!("data-status=\"{}\"", ResultStatus::Available));
        if has_status && outputs.iter().all(|o| page.contains(&escape(&o.key))) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for output in &outputs {
        assert!(page.contains(&escape(&output.key)), "{} not listed", output.key);
    }

    let dom = chromium_dom(&format!("{}/", origin_url()), Duration::from_secs(20))
        .await
        .unwrap();
    let sd = outputs.iter().find(|o| o.key.ends_with("-sd.mp4")).unwrap();
    assert!(dom.contains(&escape(&sd.key)), "Chromium's DOM lists the outputs");
    let state_json = dom
        .split("<pre id=\"media-state\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .expect("the player state");
    let states: serde_json::Value = serde_json::from_str(&unescape(state_json)).unwrap();
    let sd_state = states
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == sd.key.as_str())
        .unwrap_or_else(|| panic!("no player for {} in {states}", sd.key));
    assert_eq!(sd_state["state"], "loadedmetadata", "{sd_state}");
    assert_eq!(
        (sd_state["width"].as_u64(), sd_state["height"].as_u64()),
        (Some(256), Some(144))
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}
