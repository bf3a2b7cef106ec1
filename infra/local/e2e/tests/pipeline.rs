//! End-to-end tests of upload → SNS → one rendition per profile (480p, 720p, 1080p) on the
//! local stack, with real ffmpeg.
//!
//! They need the deployed local stack, so they are `#[ignore]`d for a plain `cargo test`;
//! `make test` deploys the stack and runs them with `--ignored`. Every key is unique to the run,
//! so the tests can share one long-lived stack and run in parallel.

use std::path::Path;
use std::time::Duration;

use harness::{
    list_keys, peek_queue, peek_queue_mentioning, rejection_code, rendition_output, rendition_profiles, send_batch,
    unique_suffix, upload, upload_bytes, upload_notice, SampleSpec, Tap, TestEnv,
};
use shared::contracts::{Job, PipelineResult, ResultStatus};
use shared::ffmpeg::Deadline;
use shared::probe::probe_file;
use shared::Code;

const WAIT: Duration = Duration::from_secs(240);

async fn env() -> TestEnv {
    TestEnv::load().await
}

/// Makes a sample, uploads it under `uploads/e2e/<run>/<name>` and waits for every profile's result.
async fn upload_and_wait_for_renditions(env: &TestEnv, name: &str, spec: SampleSpec) -> (String, Vec<PipelineResult>) {
    let sample = env.sample(spec).await;
    let tap = env.results_tap("renditions").await;
    let key = format!("uploads/e2e/{}/{name}", unique_suffix());
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let results = results_for(&tap, &key, rendition_profiles().len()).await;
    tap.close().await;
    (key, results)
}

/// Messages in the rendition DLQs that mention `needle`.
async fn dead_letters_mentioning(env: &TestEnv, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for profile in rendition_profiles() {
        let queue = rendition_output(profile, "DeadLetterQueueUrl");
        for message in peek_queue(&env.clients.sqs, env.outputs.get(&queue)).await.unwrap() {
            let body = message.body.unwrap_or_default();
            if body.contains(needle) {
                found.push(format!("{queue}: {body}"));
            }
        }
    }
    found
}

/// Waits for one result per profile (or any number `count` of results) for `key`.
async fn results_for(tap: &Tap, key: &str, count: usize) -> Vec<PipelineResult> {
    let key = key.to_owned();
    tap.collect_results(WAIT, |r| r.source.key == key, |rs| rs.len() >= count, |_, _| {})
        .await
        .unwrap()
}

fn by_profile<'a>(results: &'a [PipelineResult], profile: &str) -> &'a PipelineResult {
    results
        .iter()
        .find(|r| r.profile.as_deref() == Some(profile))
        .unwrap_or_else(|| panic!("no {profile} result in {results:#?}"))
}

const HD: SampleSpec = SampleSpec {
    width: 1920,
    height: 1080,
    fps: 30,
    seconds: 3.0,
    with_audio: true,
};

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn an_upload_becomes_a_rendition_per_profile_with_audio_and_the_same_duration() {
    let env = env().await;
    let sample = env.sample(HD).await;
    let source = probe_file(Path::new("ffprobe"), &sample, Deadline::after(Duration::from_secs(30)))
        .await
        .unwrap();
    let tap = env.results_tap("hd").await;
    let key = format!("uploads/e2e/{}/my clip+1 é.mp4", unique_suffix());
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let results = results_for(&tap, &key, rendition_profiles().len()).await;
    tap.close().await;

    // Every deployed profile was consumed from its queue and published with its output. The
    // size each must have from a 1920x1080 source: written out for the profiles we know, and for
    // a profile added since, what its own plan says (so adding one needs no edit here).
    let known = [("480p", 854, 480), ("720p", 1280, 720), ("1080p", 1920, 1080)];
    let expected = rendition_profiles().into_iter().map(|profile| {
        let (width, height) = known
            .iter()
            .find(|(name, _, _)| *name == profile)
            .map(|(_, w, h)| (*w, *h))
            .unwrap_or_else(|| {
                let plan = shared::profiles::RenditionProfile::built_in(profile)
                    .unwrap()
                    .plan(&source)
                    .expect("a plan for the sample");
                (plan.width, plan.height)
            });
        (profile, width, height)
    });
    let frame = 1.0 / 30.0;
    for (profile, width, height) in expected {
        let result = by_profile(&results, profile);
        assert_eq!(result.status, ResultStatus::Available, "{result:#?}");
        assert_eq!(result.job, Job::Rendition);
        let output = result.output.as_ref().unwrap();
        assert_eq!((output.width, output.height), (width, height));
        assert!(!output.upscale_avoided);
        assert_eq!(output.key, format!("renditions/{key}/{profile}.mp4"));
        let info = env.probe(&output.bucket, &output.key).await;
        let video = info.video.as_ref().unwrap();
        assert_eq!(
            (video.width, video.height, video.codec.as_str()),
            (width, height, "h264")
        );
        assert_eq!(info.audio.as_ref().map(|a| a.codec.as_str()), Some("aac"), "audio kept");
        let (src_video, out_video) = (
            source.video.as_ref().unwrap().duration_secs.unwrap(),
            video.duration_secs.unwrap(),
        );
        assert!(
            (src_video - out_video).abs() <= frame + 1e-6,
            "{profile}: video duration {out_video} vs source {src_video}"
        );
        assert!(output.bytes > 0);
        // What the rendition cost: its time in the invocation at the function's memory, priced.
        let compute = result.compute.as_ref().expect("a rendition result reports its compute");
        assert!(compute.billed_ms > 0 && compute.memory_mb > 0, "{compute:?}");
        let gb_seconds = f64::from(compute.memory_mb) / 1024.0 * compute.billed_ms as f64 / 1000.0;
        assert!((compute.gb_seconds - gb_seconds).abs() < 1e-9, "{compute:?}");
        assert!(compute.price_per_gb_second > 0.0, "{compute:?}");
        assert!(
            (compute.estimated_cost_usd - compute.gb_seconds * compute.price_per_gb_second).abs() < 1e-12,
            "{compute:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_source_without_audio_gives_renditions_without_audio() {
    let env = env().await;
    let (_key, results) = upload_and_wait_for_renditions(
        &env,
        "silent.mp4",
        SampleSpec {
            with_audio: false,
            ..HD
        },
    )
    .await;
    for profile in rendition_profiles() {
        let result = by_profile(&results, profile);
        assert_eq!(result.status, ResultStatus::Available, "{result:#?}");
        let output = result.output.as_ref().unwrap();
        assert!(output.note.as_deref().unwrap_or("").contains("no audio"), "{output:?}");
        let info = env.probe(&output.bucket, &output.key).await;
        assert!(info.audio.is_none());
        assert!(info.video.is_some());
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_360p_source_is_not_upscaled() {
    let env = env().await;
    let (_key, results) = upload_and_wait_for_renditions(
        &env,
        "small 360p.mp4",
        SampleSpec {
            width: 640,
            height: 360,
            ..HD
        },
    )
    .await;
    for profile in rendition_profiles() {
        let output = by_profile(&results, profile).output.clone().unwrap();
        assert_eq!((output.width, output.height), (640, 360));
        assert!(output.upscale_avoided);
        assert!(output.note.as_deref().unwrap_or("").contains("not upscaled"));
        let info = env.probe(&output.bucket, &output.key).await;
        let video = info.video.unwrap();
        assert_eq!((video.width, video.height), (640, 360));
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_corrupt_mp4_and_a_text_file_get_named_rejections_and_nothing_reaches_the_dlq() {
    let env = env().await;
    let tap = env.results_tap("rejections").await;
    let run = unique_suffix();
    let corrupt_key = format!("uploads/e2e/{run}/broken.mp4");
    let text_key = format!("uploads/e2e/{run}/notes.txt");
    // Looks like an MP4 for three bytes, then noise.
    let mut corrupt = b"\x00\x00\x00\x18ftypmp42".to_vec();
    corrupt.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    upload_bytes(&env.clients.s3, env.source_bucket(), &corrupt_key, corrupt)
        .await
        .unwrap();
    upload_bytes(
        &env.clients.s3,
        env.source_bucket(),
        &text_key,
        b"not a video\n".to_vec(),
    )
    .await
    .unwrap();

    // One wait for all the results (one per profile, and the upload's rejection): a tap hands
    // over (and deletes) what it receives.
    let results = tap
        .collect_results(
            WAIT,
            |r| r.source.key == corrupt_key || r.source.key == text_key,
            |rs| rs.len() > rendition_profiles().len(),
            |_, _| {},
        )
        .await
        .unwrap();
    tap.close().await;
    let (corrupt_results, text_results): (Vec<_>, Vec<_>) =
        results.into_iter().partition(|r| r.source.key == corrupt_key);
    for profile in rendition_profiles() {
        let result = by_profile(&corrupt_results, profile);
        assert_eq!(result.status, ResultStatus::Rejected);
        assert_eq!(result.reason.as_ref().unwrap().code, Code::CorruptInput, "{result:#?}");
    }
    assert_eq!(text_results.len(), 1, "{text_results:#?}");
    assert_eq!(text_results[0].job, Job::Upload);
    assert_eq!(text_results[0].status, ResultStatus::Rejected);
    assert_eq!(text_results[0].reason.as_ref().unwrap().code, Code::NotVideo);
    assert!(
        dead_letters_mentioning(&env, &run).await.is_empty(),
        "nothing of this run may be in a DLQ"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn the_same_message_delivered_twice_yields_one_object() {
    let env = env().await;
    let sample = env
        .sample(SampleSpec {
            width: 320,
            height: 240,
            seconds: 2.0,
            ..HD
        })
        .await;
    // Outside the uploads prefix, so that no notification announces it: the notices below are
    // its only ones, and identical.
    let key = format!("e2e-direct/{}/twice.mp4", unique_suffix());
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let tap = env.results_tap("twice").await;
    // The same notice delivered twice, raw, to the 720p queue, as an at-least-once queue may,
    // and once to the 1080p queue.
    let head = env.head_source(&key).await;
    let notice = upload_notice(
        env.source_bucket(),
        &key,
        head.content_length.unwrap() as u64,
        head.e_tag.map(|e| e.trim_matches('"').to_owned()),
    );
    let body = serde_json::to_string(&notice).unwrap();
    for queue in ["Rendition720QueueUrl", "Rendition720QueueUrl", "Rendition1080QueueUrl"] {
        env.clients
            .sqs
            .send_message()
            .queue_url(env.outputs.get(queue))
            .message_body(&body)
            .send()
            .await
            .unwrap();
    }
    // Each outcome is published once (shared::ledger): wait for both, then listen a while
    // longer for any second one while the copy is worked through.
    let mut results = tap
        .collect_results(
            WAIT,
            |r| r.source.key == key,
            |rs| {
                rs.iter().any(|r| r.profile.as_deref() == Some("720p"))
                    && rs.iter().any(|r| r.profile.as_deref() == Some("1080p"))
            },
            |_, _| {},
        )
        .await
        .unwrap();
    let late = tap
        .wait_for(
            Duration::from_secs(20),
            |v| v.pointer("/source/key").and_then(|k| k.as_str()) == Some(key.as_str()),
            |_| false,
        )
        .await
        .unwrap();
    results.extend(
        late.values
            .into_iter()
            .filter_map(|v| serde_json::from_value::<PipelineResult>(v).ok()),
    );
    tap.close().await;
    assert!(
        results.iter().all(|r| r.status == ResultStatus::Available),
        "{results:#?}"
    );
    assert_eq!(
        results.len(),
        2,
        "one result per profile, however often delivered: {results:#?}"
    );
    let keys = list_keys(
        &env.clients.s3,
        env.outputs.get("OutputBucketName"),
        &format!("renditions/{key}/"),
    )
    .await
    .unwrap();
    assert_eq!(
        keys,
        vec![
            format!("renditions/{key}/1080p.mp4"),
            format!("renditions/{key}/720p.mp4")
        ]
    );
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn one_bad_message_in_a_batch_of_ten_does_not_make_the_others_redo() {
    let env = env().await;
    let sample = env
        .sample(SampleSpec {
            width: 320,
            height: 240,
            seconds: 1.0,
            with_audio: false,
            fps: 30,
        })
        .await;
    let run = unique_suffix();
    let bucket = env.source_bucket().to_owned();
    let mut bodies = Vec::new();
    // Stored under keys without a video extension, so the upload publisher rejects them and
    // the only rendition messages for them are the ten sent below in one batch.
    for i in 0..8 {
        let key = format!("uploads/e2e/{run}/batch-{i}.bin");
        upload(&env.clients.s3, &bucket, &key, &sample).await.unwrap();
        bodies.push(notice_body(&bucket, &key));
    }
    let corrupt_key = format!("uploads/e2e/{run}/batch-corrupt.bin");
    upload_bytes(&env.clients.s3, &bucket, &corrupt_key, vec![7u8; 4096])
        .await
        .unwrap();
    bodies.push(notice_body(&bucket, &corrupt_key));
    bodies.push(format!("this is not json {run}"));
    let tap = env.results_tap("batch").await;
    let queue = env.outputs.get("Rendition720QueueUrl");
    send_batch(&env.clients.sqs, queue, &bodies).await.unwrap();

    let prefix = format!("uploads/e2e/{run}/batch-");
    let results = tap
        .collect_results(
            WAIT,
            |r| r.job == Job::Rendition && r.source.key.starts_with(&prefix),
            |rs| rs.len() >= 9,
            |_, _| {},
        )
        .await
        .unwrap();
    tap.close().await;
    let available = results.iter().filter(|r| r.status == ResultStatus::Available).count();
    let rejected: Vec<_> = results.iter().filter(|r| r.status == ResultStatus::Rejected).collect();
    assert_eq!(available, 8, "{results:#?}");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].source.key, corrupt_key);
    assert_eq!(results.len(), 9, "each message answered once");
    // The malformed message was parked in the DLQ at once, with its reason.
    let parked = peek_queue_mentioning(
        &env.clients.sqs,
        env.outputs.get("Rendition720DeadLetterQueueUrl"),
        &run,
    )
    .await
    .unwrap();
    assert_eq!(parked.len(), 1, "{parked:#?}");
    assert_eq!(rejection_code(&parked[0]), Some(Code::MalformedMessage));
}

fn notice_body(bucket: &str, key: &str) -> String {
    serde_json::to_string(&upload_notice(bucket, key, 1, None)).unwrap()
}
