//! Reliability on the local stack: triggers delivered twice, and workers killed in the middle of
//! their work. Each test prints its counts.
//!
//! * Duplicates: an S3 event (upload publisher, MediaConvert submitter), an SNS message, SQS
//!   messages (a clip request, a GIF job) and an EventBridge job event, each delivered twice,
//!   give one output, one MediaConvert job and one result per outcome.
//! * Crashes: function processes are SIGKILLed while their ffmpeg runs (a transcode, a trim, a
//!   GIF); after the visibility timeout every message is done again, with no message lost, no
//!   output doubled and no partial object ever visible at a final key.
//!
//! `#[ignore]`d like every test that needs the deployed stack; `make test` runs them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use harness::clips::{record, request_json, Recorder};
use harness::gif::{presigned_get, GifApi};
use harness::processes::{busy_with_ffmpeg, is_alive, kill_hard};
use harness::results::TopicResult;
use harness::{
    invoke_async, list_keys, rendition_output, rendition_profiles, s3_put_event, send_batch, unique_suffix, upload,
    upload_bytes, upload_notice, SampleSpec, Tap, TestEnv,
};
use serde_json::{json, Value};
use shared::contracts::clip::ClipStatus;
use shared::contracts::gif::TaskStatus;
use shared::contracts::{Job, ResultStatus};
use shared::ffmpeg::Deadline;
use shared::gif::{GifJob, GifParams, GIF_JOB_VERSION};

const WAIT: Duration = Duration::from_secs(420);
/// How long to keep listening once every expected answer is in, for a second one.
const SETTLE: Duration = Duration::from_secs(15);

const SMALL: SampleSpec = SampleSpec {
    width: 320,
    height: 240,
    fps: 25,
    seconds: 2.0,
    with_audio: true,
};

/// Everything the results topic carries that `mine` accepts, until `done` says the expected
/// answers are in, then for [`SETTLE`] more. A message that is neither contract fails the test.
async fn listen(
    tap: &Tap,
    timeout: Duration,
    mine: impl Fn(&Value) -> bool,
    done: impl Fn(&[TopicResult]) -> bool,
) -> Vec<TopicResult> {
    let typed = |values: &[Value]| {
        values
            .iter()
            .filter_map(|v| TopicResult::parse(v).ok())
            .collect::<Vec<_>>()
    };
    let answered = tap
        .wait_for(timeout, &mine, |values| done(&typed(values)))
        .await
        .unwrap();
    assert!(
        answered.complete,
        "timed out after {timeout:?}; heard so far: {:#?}",
        answered.values
    );
    // Anything more for the same outcomes (a duplicate result) arrives within SETTLE.
    let late = tap.wait_for(SETTLE, &mine, |_| false).await.unwrap();
    [answered.values, late.values]
        .concat()
        .iter()
        .map(|v| TopicResult::parse(v).unwrap())
        .collect()
}

/// The outcome of a rendition or MediaConvert job that made its output (see
/// [`TopicResult::outcome`]).
fn available(job: Job, profile: &str, key: &str) -> String {
    format!("{job} {profile} {key} {} -", ResultStatus::Available)
}

fn source_key(value: &Value) -> Option<&str> {
    value.pointer("/source/key").and_then(Value::as_str)
}

async fn put_sample(env: &TestEnv, key: &str, sample: &Path) -> (u64, String) {
    upload(&env.clients.s3, env.source_bucket(), key, sample).await.unwrap();
    let head = env.head_source(key).await;
    (
        head.content_length().unwrap_or(0) as u64,
        head.e_tag().unwrap_or("").trim_matches('"').to_owned(),
    )
}

/// A camera with one 10 s recording that started five minutes ago; returns its id.
async fn camera(env: &TestEnv, name: &str) -> (String, i64) {
    let camera_id = format!("cam-{name}");
    let start_ms = (chrono::Utc::now().timestamp() - 300) * 1000;
    let recorder = Recorder {
        width: 320,
        height: 240,
        fps: 25,
        gop_seconds: 2,
        seconds_each: 10,
        count: 1,
        start_ms,
        preset: "ultrafast",
    };
    record(
        &env.clients,
        env.outputs.get("RecordingsBucketName"),
        &camera_id,
        name,
        recorder,
        &env.work.path().join(name),
    )
    .await
    .unwrap();
    (camera_id, start_ms)
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn every_trigger_delivered_twice_gives_one_output_one_job_and_one_result_per_outcome() {
    let env = TestEnv::load().await;
    let tap = env.results_tap("duplicates").await;
    let run = unique_suffix();
    let sample = env.sample(SMALL).await;
    let source_bucket = env.source_bucket().to_owned();
    let mut triggers = Vec::new();

    // An S3 event delivered twice to the upload publisher. The object lies outside the
    // notification prefixes, so these two deliveries are its only announcements.
    let s3_key = format!("duplicates/{run}/s3 event twice+é.mp4");
    let (size, etag) = put_sample(&env, &s3_key, &sample).await;
    let event = s3_put_event(&source_bucket, &s3_key, size, &etag, "0A1B2C3D4E5F000001");
    for _ in 0..2 {
        invoke_async(&env.clients, env.outputs.get("UploadPublisherFunctionName"), &event)
            .await
            .unwrap();
    }
    triggers.push("S3 event → upload publisher");

    // An SNS message delivered twice: the same notice published twice on the uploads topic.
    let sns_key = format!("duplicates/{run}/sns-twice.mp4");
    let (size, etag) = put_sample(&env, &sns_key, &sample).await;
    let notice = upload_notice(&source_bucket, &sns_key, size, Some(etag));
    for _ in 0..2 {
        shared::publish::publish_json(
            &env.clients.sns,
            env.outputs.get("UploadsTopicArn"),
            &notice,
            &notice.attributes(),
        )
        .await
        .unwrap();
    }
    triggers.push("SNS message → rendition queues");

    // An SQS message delivered twice: one clip request, sent twice.
    let (camera_id, start_ms) = camera(&env, &format!("dup-{run}")).await;
    let clip_id = format!("dup-{run}");
    let request = request_json(&clip_id, &camera_id, start_ms + 1_000, start_ms + 4_000);
    send_batch(
        &env.clients.sqs,
        env.outputs.get("ClipRequestsQueueUrl"),
        &[request.clone(), request],
    )
    .await
    .unwrap();
    triggers.push("SQS message → clip trimmer");

    // An SQS message delivered twice: a GIF job, once from the API and once more as a copy.
    let gif_source_key = format!("duplicates/{run}/gif-source.bin");
    upload(&env.clients.s3, &source_bucket, &gif_source_key, &sample)
        .await
        .unwrap();
    let src_url = presigned_get(&env.clients.s3, &source_bucket, &gif_source_key)
        .await
        .unwrap();
    let api = GifApi::from_outputs(&env.outputs).unwrap();
    let params = GifParams {
        start_secs: 0.0,
        duration_secs: 1.0,
        width: 160,
        fps: 5,
    };
    let task_id = api
        .convert(
            json!({"action": "convert", "src_url": src_url, "start": params.start_secs,
                        "duration": params.duration_secs, "width": params.width, "fps": params.fps}),
        )
        .await
        .unwrap();
    let copy = GifJob {
        version: GIF_JOB_VERSION,
        task_id: task_id.clone(),
        src_url: src_url.clone(),
        params,
    };
    send_batch(
        &env.clients.sqs,
        env.outputs.get("GifJobsQueueUrl"),
        &[serde_json::to_string(&copy).unwrap()],
    )
    .await
    .unwrap();
    triggers.push("SQS message → GIF converter");

    // An S3 event delivered twice more to the MediaConvert submitter (the upload's own
    // notification is the first delivery).
    let mc_key = format!("{}dup/{run}/twice.mp4", env.outputs.get("MediaConvertUploadsPrefix"));
    let (size, etag) = put_sample(&env, &mc_key, &env.sample(SampleSpec { seconds: 1.0, ..SMALL }).await).await;
    let event = s3_put_event(&source_bucket, &mc_key, size, &etag, "0A1B2C3D4E5F000002");
    for _ in 0..2 {
        invoke_async(
            &env.clients,
            env.outputs.get("MediaConvertSubmitterFunctionName"),
            &event,
        )
        .await
        .unwrap();
    }
    triggers.push("S3 event → MediaConvert submitter");

    // A job that fails (not a video), whose ERROR event is then put on the bus twice more.
    let mc_bad_key = format!(
        "{}dup/{run}/not-a-video.mp4",
        env.outputs.get("MediaConvertUploadsPrefix")
    );
    upload_bytes(
        &env.clients.s3,
        &source_bucket,
        &mc_bad_key,
        b"not a video at all".to_vec(),
    )
    .await
    .unwrap();
    let failed = listen(
        &tap,
        WAIT,
        |v| source_key(v) == Some(mc_bad_key.as_str()),
        |heard| !heard.is_empty(),
    )
    .await;
    let job_id = match &failed[0] {
        TopicResult::Pipeline(result) => result
            .mediaconvert
            .as_ref()
            .expect("a MediaConvert result")
            .job_id
            .clone(),
        other => panic!("not a MediaConvert result: {other:#?}"),
    };
    let job = env
        .clients
        .mediaconvert
        .get_job()
        .id(&job_id)
        .send()
        .await
        .unwrap()
        .job
        .unwrap();
    let detail = json!({
        "timestamp": chrono::Utc::now().timestamp_millis(),
        "accountId": "000000000000",
        "queue": job.queue(),
        "jobId": job_id,
        "status": "ERROR",
        "errorCode": job.error_code(),
        "errorMessage": job.error_message(),
        "userMetadata": job.user_metadata(),
    });
    let entry = PutEventsRequestEntry::builder()
        .source(env.outputs.get("MediaConvertEventSource"))
        .detail_type("MediaConvert Job State Change")
        .detail(detail.to_string())
        .resources(job.arn().unwrap_or_default())
        .build();
    for _ in 0..2 {
        let put = env
            .clients
            .events
            .put_events()
            .entries(entry.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.failed_entry_count(), 0, "{put:?}");
    }
    triggers.push("EventBridge job event → MediaConvert results");

    // Every answer of this test, until each expected outcome is in and nothing more comes.
    let keys: BTreeSet<String> = [&s3_key, &sns_key, &mc_key, &mc_bad_key].into_iter().cloned().collect();
    let renditions = [&s3_key, &sns_key].into_iter().flat_map(|key| {
        rendition_profiles()
            .into_iter()
            .map(move |p| available(Job::Rendition, p, key))
    });
    let expected: BTreeSet<String> = renditions
        .chain([
            format!("clip {clip_id} {}", ClipStatus::Available),
            available(Job::Mediaconvert, env.outputs.get("MediaConvertTemplate"), &mc_key),
        ])
        .collect();
    let mine = |v: &Value| {
        source_key(v).is_some_and(|k| keys.contains(k)) || v.get("clipId").and_then(Value::as_str) == Some(&clip_id)
    };
    let mut heard = failed.clone();
    heard.extend(
        listen(&tap, WAIT, mine, |heard| {
            let outcomes: BTreeSet<String> = heard.iter().map(TopicResult::outcome).collect();
            expected.is_subset(&outcomes)
        })
        .await,
    );
    let gif = api.wait(&task_id, WAIT, |_| {}).await.unwrap();
    tap.close().await;

    let mut per_outcome: BTreeMap<String, usize> = BTreeMap::new();
    for result in &heard {
        *per_outcome.entry(result.outcome()).or_default() += 1;
    }
    let output_bucket = env.output_bucket();
    let mut outputs = Vec::new();
    for prefix in [
        format!("renditions/{s3_key}/"),
        format!("renditions/{sns_key}/"),
        format!("clips/{camera_id}/{clip_id}.mp4"),
        format!("gifs/{task_id}"),
    ] {
        outputs.extend(list_keys(&env.clients.s3, output_bucket, &prefix).await.unwrap());
    }
    let mut jobs = 0;
    let mut pages = env.clients.mediaconvert.list_jobs().into_paginator().send();
    while let Some(page) = pages.next().await {
        jobs += page
            .unwrap()
            .jobs()
            .iter()
            .filter(|job| job.user_metadata().and_then(|m| m.get("sourceKey")) == Some(&mc_key))
            .count();
    }
    let most = per_outcome.values().copied().max().unwrap_or(0);
    // A rendition per profile of each of the two uploads, the clip and the GIF.
    let expected_videos = 2 * rendition_profiles().len() + 2;
    println!("per outcome: {per_outcome:#?}");
    println!("outputs: {outputs:#?}");
    println!(
        "duplicates: {} triggers delivered twice ({}); outputs {} (expected {expected_videos}), MediaConvert jobs {jobs} (expected 1), \
         results {} for {} outcomes, most results for one outcome {most} (goal 1)",
        triggers.len(),
        triggers.join(", "),
        outputs.iter().filter(|k| k.ends_with(".mp4") || k.ends_with(".gif")).count(),
        heard.len(),
        per_outcome.len(),
    );
    assert_eq!(gif.status, TaskStatus::Done, "{gif:?}");
    assert_eq!(most, 1, "an outcome was published more than once: {per_outcome:#?}");
    assert_eq!(
        per_outcome.len(),
        expected.len() + 1,
        "the expected outcomes and the failed job: {per_outcome:#?}"
    );
    assert_eq!(jobs, 1, "one MediaConvert job for one object version");
    let videos: Vec<_> = outputs
        .iter()
        .filter(|k| k.ends_with(".mp4") || k.ends_with(".gif"))
        .collect();
    assert_eq!(videos.len(), expected_videos, "{outputs:#?}");
}

/// What a crash test submitted, and what each job's final answer must be.
struct Submitted {
    upload_keys: Vec<String>,
    clip_ids: Vec<String>,
    gif_tasks: Vec<String>,
}

/// Counts of the crash test.
#[derive(Debug, Default)]
struct Kills {
    by_function: BTreeMap<String, usize>,
    /// ffmpeg children still alive a second after their function process was killed.
    orphans: usize,
    /// Objects seen at a final key right after a kill that were not complete media.
    partial_objects: usize,
    /// Objects checked right after kills.
    objects_checked: usize,
}

impl Kills {
    fn total(&self) -> usize {
        self.by_function.values().sum()
    }

    fn of_kind(&self, kind: &str) -> usize {
        self.by_function
            .iter()
            .filter(|(function, _)| work_kind(function) == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

/// What a function's ffmpeg is doing: a transcode, a trim or a GIF.
fn work_kind(function: &str) -> &'static str {
    if function.contains("rendition") {
        "transcode"
    } else if function.contains("clip") {
        "trim"
    } else {
        "gif"
    }
}

/// Whether the object at `key` is complete, decodable media (ffprobe reads a duration).
async fn complete_media(env: &TestEnv, key: &str) -> bool {
    let local = env.work.path().join(format!("check-{}", unique_suffix()));
    if shared::storage::download_to_file(&env.clients.s3, env.output_bucket(), key, &local)
        .await
        .is_err()
    {
        return true; // gone again (replaced while we looked): nothing partial was read
    }
    let probed =
        shared::probe::probe_file(Path::new("ffprobe"), &local, Deadline::after(Duration::from_secs(30))).await;
    let _ = std::fs::remove_file(&local);
    probed.is_ok_and(|info| info.duration_secs.unwrap_or(0.0) > 0.0 || key.ends_with(".gif"))
}

/// The objects under `prefix` in the output bucket, each with its ETag (its version).
async fn object_versions(env: &TestEnv, prefix: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pages = env
        .clients
        .s3
        .list_objects_v2()
        .bucket(env.output_bucket())
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.unwrap().contents.unwrap_or_default() {
            found.push((object.key.unwrap_or_default(), object.e_tag.unwrap_or_default()));
        }
    }
    found
}

/// Kills function processes (of `functions`) that have run ffmpeg for at least half a second,
/// each process once, until `target` kills or `window` has passed; after each kill, every
/// object then present under `final_prefixes` and not yet checked in that version is checked to
/// be complete.
async fn kill_mid_work(
    env: &TestEnv,
    functions: &[&str],
    target: usize,
    window: Duration,
    final_prefixes: &[String],
) -> Kills {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let started = Instant::now();
    let mut kills = Kills::default();
    let mut killed = BTreeSet::new();
    let mut checked = BTreeSet::new();
    while kills.total() < target && started.elapsed() < window {
        // The kind of work (transcode, trim, GIF) killed least so far goes first.
        let victim = busy_with_ffmpeg(&endpoint, functions)
            .into_iter()
            .filter(|busy| busy.ffmpeg_age >= Duration::from_millis(200) && !killed.contains(&busy.process.pid))
            .min_by_key(|busy| kills.of_kind(work_kind(&busy.process.function)));
        let Some(busy) = victim else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if kill_hard(busy.process.pid).is_err() {
            continue; // it finished first
        }
        killed.insert(busy.process.pid);
        *kills.by_function.entry(busy.process.function.clone()).or_default() += 1;
        println!(
            "kill {}: {} (pid {}) while its ffmpeg had run {:.1} s",
            kills.total(),
            busy.process.function,
            busy.process.pid,
            busy.ffmpeg_age.as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        if is_alive(busy.ffmpeg_pid) {
            kills.orphans += 1;
        }
        for prefix in final_prefixes {
            for (key, etag) in object_versions(env, prefix).await {
                if key.ends_with(".png") {
                    continue; // thumbnails are images; the clip beside each is checked
                }
                // Each object as written once: one already checked has not changed since, and
                // re-reading all of them after every kill would eat the kill window.
                if !checked.insert((key.clone(), etag)) {
                    continue;
                }
                kills.objects_checked += 1;
                if !complete_media(env, &key).await {
                    println!("partial object at a final key: {key}");
                    kills.partial_objects += 1;
                }
            }
        }
    }
    kills
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn workers_killed_mid_work_have_their_messages_done_again_with_nothing_lost_or_doubled() {
    const KILLS: usize = 20;
    let env = TestEnv::load().await;
    let tap = env.results_tap("crashes").await;
    let run = unique_suffix();
    let functions: Vec<&str> = rendition_profiles()
        .into_iter()
        .map(|p| env.outputs.get(&rendition_output(p, "FunctionName")))
        .chain([
            env.outputs.get("ClipTrimmerFunctionName"),
            env.outputs.get("GifConverterFunctionName"),
        ])
        .collect();
    // Kills must all happen before the first killed message comes back, so that no message
    // is killed twice and all of them are redone within the redrive limit.
    let visibility: u64 = env
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(env.outputs.get("Rendition720QueueUrl"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let window = Duration::from_secs(visibility.saturating_sub(20).max(10));

    // Sources long enough that each ffmpeg runs for seconds: a 720p, 8 s upload (rendered at
    // 720p by both workers, since 1080p never upscales), a camera with a 30 s recording, and
    // a 6 s GIF source.
    let upload_sample = env
        .sample(SampleSpec {
            width: 1280,
            height: 720,
            fps: 25,
            seconds: 8.0,
            with_audio: true,
        })
        .await;
    let camera_id = format!("cam-crash-{run}");
    let start_ms = (chrono::Utc::now().timestamp() - 600) * 1000;
    record(
        &env.clients,
        env.outputs.get("RecordingsBucketName"),
        &camera_id,
        &format!("crash-{run}"),
        Recorder {
            width: 1280,
            height: 720,
            fps: 25,
            gop_seconds: 10,
            seconds_each: 30,
            count: 1,
            start_ms,
            preset: "ultrafast",
        },
        &env.work.path().join("recordings"),
    )
    .await
    .unwrap();
    let gif_source = format!("crash/{run}/gif-source.bin");
    upload(&env.clients.s3, env.source_bucket(), &gif_source, &upload_sample)
        .await
        .unwrap();
    let src_url = presigned_get(&env.clients.s3, env.source_bucket(), &gif_source)
        .await
        .unwrap();
    let api = GifApi::from_outputs(&env.outputs).unwrap();

    // Ten uploads (twenty rendition messages), six clips and six GIFs, a second or so apart so
    // that most arrive in batches of their own; the killer runs meanwhile.
    let uploads_prefix = env.outputs.get("UploadsPrefix");
    let final_prefixes = vec![
        format!("renditions/{uploads_prefix}crash/{run}/"),
        format!("clips/{camera_id}/"),
    ];
    let killer = kill_mid_work(&env, &functions, KILLS, window, &final_prefixes);
    let submit = async {
        let mut submitted = Submitted {
            upload_keys: Vec::new(),
            clip_ids: Vec::new(),
            gif_tasks: Vec::new(),
        };
        for i in 0..10 {
            let key = format!("{uploads_prefix}crash/{run}/upload-{i}.mp4");
            upload(&env.clients.s3, env.source_bucket(), &key, &upload_sample)
                .await
                .unwrap();
            submitted.upload_keys.push(key);
            if i < 6 {
                let clip_id = format!("crash-{run}-{i}");
                // Clips of 8–13 s with a cut inside a 10 s GOP: a smart cut re-encodes seconds.
                let from = start_ms + 3_000 + i as i64 * 1_000;
                let body = request_json(&clip_id, &camera_id, from, from + 8_000 + i as i64 * 1_000);
                send_batch(&env.clients.sqs, env.outputs.get("ClipRequestsQueueUrl"), &[body])
                    .await
                    .unwrap();
                submitted.clip_ids.push(clip_id);
                let task = api
                    .convert(json!({"action": "convert", "src_url": src_url, "start": 0, "duration": 6, "width": 480, "fps": 15}))
                    .await
                    .unwrap();
                submitted.gif_tasks.push(task);
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        submitted
    };
    let (kills, submitted) = tokio::join!(killer, submit);
    println!("kills: {kills:?}");

    // Every job must end answered once: every rendition of each upload, each clip, each GIF.
    let upload_keys: BTreeSet<&str> = submitted.upload_keys.iter().map(String::as_str).collect();
    let clip_ids: BTreeSet<&str> = submitted.clip_ids.iter().map(String::as_str).collect();
    let mine = |v: &Value| {
        source_key(v).is_some_and(|k| upload_keys.contains(k))
            || v.get("clipId")
                .and_then(Value::as_str)
                .is_some_and(|c| clip_ids.contains(c))
    };
    let expected = upload_keys.len() * rendition_profiles().len() + clip_ids.len();
    let finished = |heard: &[TopicResult]| {
        heard
            .iter()
            .filter(|r| r.is_available())
            .map(TopicResult::outcome)
            .collect::<BTreeSet<_>>()
            .len()
            >= expected
    };
    let started = Instant::now();
    let heard = listen(&tap, WAIT, mine, finished).await;
    let mut gif_done = 0;
    for task in &submitted.gif_tasks {
        let answer = api.wait(task, WAIT, |_| {}).await.unwrap();
        if answer.status == TaskStatus::Done {
            gif_done += 1;
        }
    }
    tap.close().await;
    let drained_in = started.elapsed();

    let mut per_outcome: BTreeMap<String, usize> = BTreeMap::new();
    for result in &heard {
        *per_outcome.entry(result.outcome()).or_default() += 1;
    }
    let answered = heard
        .iter()
        .filter(|r| r.is_available())
        .map(TopicResult::outcome)
        .collect::<BTreeSet<_>>()
        .len();
    let lost = expected - answered.min(expected) + (submitted.gif_tasks.len() - gif_done);
    let doubled_results = per_outcome.values().filter(|n| **n > 1).count();
    let mut outputs = Vec::new();
    for prefix in &final_prefixes {
        outputs.extend(list_keys(&env.clients.s3, env.output_bucket(), prefix).await.unwrap());
    }
    for task in &submitted.gif_tasks {
        outputs.extend(
            list_keys(&env.clients.s3, env.output_bucket(), &format!("gifs/{task}"))
                .await
                .unwrap(),
        );
    }
    let media: Vec<_> = outputs.iter().filter(|k| !k.ends_with(".png")).collect();
    let duplicate_outputs = media.len().saturating_sub(expected + submitted.gif_tasks.len());
    let mut incomplete = 0;
    for key in &media {
        if !complete_media(&env, key).await {
            incomplete += 1;
        }
    }
    println!("per outcome: {per_outcome:#?}");
    println!(
        "crashes: {} kills ({}), messages {} , lost {lost}, duplicate outputs {duplicate_outputs}, doubled results \
         {doubled_results}, partial objects seen at a final key {} (of {} checked after kills), incomplete final \
         objects {incomplete}, orphaned ffmpeg {}; all redone {:.0} s after the last submission (visibility timeout {visibility} s)",
        kills.total(),
        kills
            .by_function
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        expected + submitted.gif_tasks.len(),
        kills.partial_objects,
        kills.objects_checked,
        kills.orphans,
        drained_in.as_secs_f64(),
    );
    assert_eq!(kills.total(), KILLS, "not enough work was caught mid-ffmpeg: {kills:?}");
    for kind in ["transcode", "trim", "gif"] {
        assert!(kills.of_kind(kind) > 0, "no {kind} was killed: {kills:?}");
    }
    assert_eq!(lost, 0, "{per_outcome:#?}");
    assert_eq!(duplicate_outputs, 0, "{media:#?}");
    assert_eq!(doubled_results, 0, "{per_outcome:#?}");
    assert_eq!(kills.partial_objects, 0);
    assert_eq!(incomplete, 0);
    assert_eq!(kills.orphans, 0, "ffmpeg outlived its killed function process");
    let dlqs = rendition_profiles()
        .into_iter()
        .map(|p| rendition_output(p, "DeadLetterQueueUrl"))
        .chain(["ClipRequestsDeadLetterQueueUrl", "GifJobsDeadLetterQueueUrl"].map(String::from));
    for dlq in dlqs {
        let ours = harness::peek_queue_mentioning(&env.clients.sqs, env.outputs.get(&dlq), &run)
            .await
            .unwrap();
        assert_eq!(ours.len(), 0, "{dlq} holds messages of this test");
    }
}
