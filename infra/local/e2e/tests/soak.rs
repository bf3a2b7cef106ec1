//! Load on the local stack (`make soak`; long, so not part of `make test`): 200 uploads and 200
//! clip requests at once. Everything is processed, the dead-letter queues stay empty, and no
//! function runs more execution environments than its reserved concurrency. Prints messages
//! in, results out, the time to drain and the peak concurrency of each function.
//!
//! Peak concurrency is read off the kernel: the emulator starts one process per concurrent
//! execution environment and reuses idle ones, so the most processes a function ever had at
//! once is the most invocations it ran at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use harness::clips::{record, request_json, Recorder};
use harness::processes::function_processes;
use harness::results::TopicResult;
use harness::{
    peek_queue_mentioning, rendition_output, rendition_profiles, send_batch, unique_suffix, upload, SampleSpec, TestEnv,
};
use serde_json::Value;

const UPLOADS: usize = 200;
const CLIPS: usize = 200;
const WAIT: Duration = Duration::from_secs(1800);

#[tokio::test]
#[ignore = "long: `make soak` runs it against the local stack"]
async fn two_hundred_uploads_and_two_hundred_clips_at_once_all_drain_within_the_reserved_concurrency() {
    let env = TestEnv::load().await;
    let tap = env.results_tap("soak").await;
    let run = unique_suffix();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let functions: Vec<String> = rendition_profiles()
        .into_iter()
        .map(|p| rendition_output(p, "FunctionName"))
        .chain(["UploadPublisherFunctionName", "ClipTrimmerFunctionName"].map(String::from))
        .map(|output| env.outputs.get(&output).to_owned())
        .collect();
    let mut reserved = BTreeMap::new();
    for function in &functions {
        let limit = env
            .clients
            .lambda
            .get_function_concurrency()
            .function_name(function)
            .send()
            .await
            .unwrap()
            .reserved_concurrent_executions();
        reserved.insert(function.clone(), limit);
    }

    let sample = env
        .sample(SampleSpec {
            width: 320,
            height: 240,
            fps: 25,
            seconds: 1.0,
            with_audio: true,
        })
        .await;
    let camera_id = format!("cam-soak-{run}");
    let start_ms = (chrono::Utc::now().timestamp() - 900) * 1000;
    record(
        &env.clients,
        env.outputs.get("RecordingsBucketName"),
        &camera_id,
        &format!("soak-{run}"),
        Recorder {
            width: 320,
            height: 240,
            fps: 25,
            gop_seconds: 2,
            seconds_each: 60,
            count: 2,
            start_ms,
            preset: "ultrafast",
        },
        &env.work.path().join("recordings"),
    )
    .await
    .unwrap();

    // Peak execution environments per function, sampled while the load runs.
    let peaks: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peaks, sampling, endpoint) = (peaks.clone(), sampling.clone(), endpoint.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                let mut now: BTreeMap<String, usize> = BTreeMap::new();
                for process in function_processes(&endpoint) {
                    *now.entry(process.function).or_default() += 1;
                }
                {
                    let mut peaks = peaks.lock().unwrap();
                    for (function, count) in now {
                        let peak = peaks.entry(function).or_default();
                        *peak = (*peak).max(count);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let started = Instant::now();
    let uploads_prefix = env.outputs.get("UploadsPrefix");
    let upload_keys: Vec<String> = (0..UPLOADS)
        .map(|i| format!("{uploads_prefix}soak/{run}/upload-{i:03}.mp4"))
        .collect();
    let clip_ids: Vec<String> = (0..CLIPS).map(|i| format!("soak-{run}-{i:03}")).collect();
    let requests: Vec<String> = clip_ids
        .iter()
        .enumerate()
        .map(|(i, clip_id)| {
            // 2 s clips spread over the two minutes of recordings, some across the boundary.
            let from = start_ms + 1_000 + (i as i64 * 587) % 115_000;
            request_json(clip_id, &camera_id, from, from + 2_000)
        })
        .collect();
    let send_uploads = stream::iter(&upload_keys).for_each_concurrent(16, |key| {
        let (env, sample) = (&env, &sample);
        async move { upload(&env.clients.s3, env.source_bucket(), key, sample).await.unwrap() }
    });
    let send_clips = stream::iter(requests.chunks(10)).for_each_concurrent(4, |batch| {
        let env = &env;
        async move {
            send_batch(&env.clients.sqs, env.outputs.get("ClipRequestsQueueUrl"), batch)
                .await
                .unwrap()
        }
    });
    tokio::join!(send_uploads, send_clips);
    let sent_in = started.elapsed();

    let upload_set: BTreeSet<&str> = upload_keys.iter().map(String::as_str).collect();
    let clip_set: BTreeSet<&str> = clip_ids.iter().map(String::as_str).collect();
    let expected = UPLOADS * rendition_profiles().len() + CLIPS;
    let mut answers: BTreeMap<String, TopicResult> = BTreeMap::new();
    let mut received = 0usize;
    let mut last_report = Instant::now();
    while answers.len() < expected {
        assert!(
            started.elapsed() < WAIT,
            "timed out: {} of {expected} answered",
            answers.len()
        );
        let taken = tap
            .take_json(|v| {
                v.pointer("/source/key")
                    .and_then(Value::as_str)
                    .is_some_and(|k| upload_set.contains(k))
                    || v.get("clipId")
                        .and_then(Value::as_str)
                        .is_some_and(|c| clip_set.contains(c))
            })
            .await
            .unwrap();
        for value in taken {
            received += 1;
            let result = TopicResult::parse(&value).unwrap();
            let id = match &result {
                TopicResult::Clip(clip) => format!("clip {}", clip.clip_id.as_deref().unwrap_or("")),
                TopicResult::Pipeline(r) => format!("{} {}", r.profile.as_deref().unwrap_or("-"), r.source.key),
            };
            // A pending clip is not its final answer.
            if result.is_final() {
                answers.insert(id, result);
            }
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            println!(
                "{:>5.0} s: {} of {expected} answered",
                started.elapsed().as_secs_f64(),
                answers.len()
            );
            last_report = Instant::now();
        }
    }
    let drained_in = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    tap.close().await;

    let not_done: Vec<_> = answers.iter().filter(|(_, r)| !r.is_available()).collect();
    let mut parked = 0;
    let dlqs = rendition_profiles()
        .into_iter()
        .map(|p| rendition_output(p, "DeadLetterQueueUrl"))
        .chain(["ClipRequestsDeadLetterQueueUrl", "UploadPublisherDeadLetterQueueUrl"].map(String::from));
    for dlq in dlqs {
        parked += peek_queue_mentioning(&env.clients.sqs, env.outputs.get(&dlq), &run)
            .await
            .unwrap()
            .len();
    }
    let peaks = peaks.lock().unwrap().clone();
    println!(
        "load: messages in {} ({UPLOADS} uploads, {CLIPS} clip requests; sent in {:.1} s); results out {} final of \
         {expected} expected ({received} received in all), not successful {}; time to drain {:.0} s; DLQ messages {parked}",
        UPLOADS + CLIPS,
        sent_in.as_secs_f64(),
        answers.len(),
        not_done.len(),
        drained_in.as_secs_f64(),
    );
    for function in &functions {
        println!(
            "   peak concurrency {function:<36} {:>3} (reserved {})",
            peaks.get(function).copied().unwrap_or(0),
            reserved[function].map_or("none".to_owned(), |r| r.to_string())
        );
    }
    assert!(not_done.is_empty(), "{not_done:#?}");
    assert_eq!(parked, 0);
    for function in &functions {
        if let Some(limit) = reserved[function] {
            let peak = peaks.get(function).copied().unwrap_or(0);
            assert!(peak <= limit as usize, "{function}: {peak} > reserved {limit}");
        }
    }
}
