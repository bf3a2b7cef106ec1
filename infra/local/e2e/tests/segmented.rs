//! Segmented renditions on the local stack: a source longer than the local stack's
//! `SegmentedAboveSeconds` is handed by every rendition worker to the segmented-rendition state
//! machine (Step Functions in the emulator, the real template), rendered in parallel segments by
//! the `segmented-rendition` function with real ffmpeg, and joined.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::processes::{busy_with_ffmpeg, kill_hard};
use harness::results::TopicResult;
use harness::{
    list_keys, rendition_profiles, unique_suffix, upload, upload_notice, SampleSpec, SegmentedExecution, Tap, TestEnv,
};
use serde_json::Value;
use shared::contracts::segmented::{ExecutionInput, SegmentedJob};
use shared::contracts::{ObjectRef, PipelineResult, ResultStatus};
use shared::Code;

/// How long one profile's segmented rendition may take on two shared cores.
const WAIT: Duration = Duration::from_secs(900);
/// How long to keep listening once every expected answer is in, for a second one.
const SETTLE: Duration = Duration::from_secs(15);

/// A 30-minute 360p talk with sound, at 10 fps (a screen recording's or a camera's rate): 18,000
/// frames, far over the local `SegmentedAboveSeconds` (60 s, see the Makefile). One pass of it
/// takes about 60 s alone on this 2-core machine; the three profiles' workers at once take about
/// three times that each, past the local stack's 120 s worker timeout. (At 30 fps the test
/// would add about 15 minutes to `make test`.)
const LONG: SampleSpec = SampleSpec {
    width: 640,
    height: 360,
    fps: 10,
    seconds: LONG_SECONDS,
    with_audio: true,
};
const LONG_SECONDS: f64 = 1800.0;

/// Every pipeline result for `key` until `profiles` profiles have answered with a final status,
/// then for [`SETTLE`] more (a second answer would arrive then), progress included.
async fn results_for(tap: &Tap, key: &str, profiles: usize) -> Vec<PipelineResult> {
    let mine = |value: &Value| value.pointer("/source/key").and_then(Value::as_str) == Some(key);
    let finals = |values: &[Value]| {
        values
            .iter()
            .filter_map(|v| TopicResult::parse(v).ok())
            .filter(TopicResult::is_final)
            .count()
    };
    let answered = tap
        .wait_for(WAIT, &mine, |values| finals(values) >= profiles)
        .await
        .unwrap();
    assert!(
        answered.complete,
        "timed out after {WAIT:?}; heard: {:#?}",
        answered.values
    );
    let late = tap.wait_for(SETTLE, &mine, |_| false).await.unwrap();
    [answered.values, late.values]
        .concat()
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

/// `result` is `failed` with `code`, and its message starts with `message_start`.
fn assert_failed(result: &PipelineResult, code: Code, message_start: &str) {
    assert_eq!(result.status, ResultStatus::Failed, "{result:#?}");
    let reason = result.reason.as_ref().unwrap();
    assert_eq!(reason.code, code, "{reason:?}");
    assert!(reason.message.starts_with(message_start), "{}", reason.message);
}

fn of_profile<'a>(results: &'a [PipelineResult], profile: &str) -> Vec<&'a PipelineResult> {
    results
        .iter()
        .filter(|r| r.profile.as_deref() == Some(profile))
        .collect()
}

/// `ffprobe` entries (of frames, which it decodes, or packets) of `stream`, one line each.
fn probed_entries(file: &Path, stream: &str, entries: &str) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            entries,
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches(',').to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Presentation time of every video frame, in seconds, in presentation order: one packet is one
/// frame, so the container's packets are read (decoding 18,000 frames three times took minutes of
/// the test on two cores; the pictures at the joins are compared decoded, by PSNR, in
/// `shared/tests/segmented_render.rs` and `make bench`).
fn video_frame_times(file: &Path) -> Vec<f64> {
    let mut times: Vec<f64> = probed_entries(file, "v:0", "packet=pts_time")
        .iter()
        .map(|t| {
            t.parse()
                .unwrap_or_else(|_| panic!("a video frame without a time: {t:?}"))
        })
        .collect();
    // Packets come in decoding order.
    times.sort_by(f64::total_cmp);
    times
}

/// (start, end) of every decoded audio frame, in seconds: its time and its samples at `rate`.
fn audio_frame_spans(file: &Path, rate: f64) -> Vec<(f64, f64)> {
    probed_entries(file, "a:0", "frame=pts_time,nb_samples")
        .iter()
        .map(|line| {
            let (pts, samples) = line
                .split_once(',')
                .unwrap_or_else(|| panic!("an audio frame: {line:?}"));
            let pts: f64 = pts.parse().unwrap();
            (pts, pts + samples.parse::<f64>().unwrap() / rate)
        })
        .collect()
}

/// Kills the first segment task seen running ffmpeg for at least half a second (SIGKILL, as an
/// out-of-memory kill would), once; returns whether it found one within `window`.
/// An execution leaves nothing under its scratch prefix, whichever way it ended.
async fn assert_no_scratch_left(env: &TestEnv, execution: &SegmentedExecution) {
    let scratch = execution
        .input
        .pointer("/job/scratchPrefix")
        .and_then(Value::as_str)
        .unwrap();
    let left = list_keys(&env.clients.s3, env.output_bucket(), scratch).await.unwrap();
    assert!(left.is_empty(), "{}: scratch parts left: {left:?}", execution.name);
}

async fn kill_one_segment_task(function: String, window: Duration) -> bool {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let started = Instant::now();
    while started.elapsed() < window {
        let busy = busy_with_ffmpeg(&endpoint, &[function.as_str()]);
        if let Some(victim) = busy.iter().find(|b| b.ffmpeg_age >= Duration::from_millis(500)) {
            if kill_hard(victim.process.pid).is_ok() {
                eprintln!("killed segment task pid {} mid-encode", victim.process.pid);
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_long_source_is_rendered_in_segments_frame_exact_once_despite_a_duplicate_notice_and_a_killed_task() {
    let env = TestEnv::load().await;
    let sample = env.sample(LONG).await;
    let tap = env.results_tap("segmented").await;
    // Outside the notification prefixes: the two notices below are its only announcements, the
    // same notice twice, as a duplicated delivery brings it.
    let key = format!("segmented/{}/a long talk.mp4", unique_suffix());
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    let head = env.head_source(&key).await;
    let notice = upload_notice(
        env.source_bucket(),
        &key,
        head.content_length().unwrap_or(0) as u64,
        head.e_tag().map(|e| e.trim_matches('"').to_owned()),
    );
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
    let killer = tokio::spawn(kill_one_segment_task(
        env.outputs.get("SegmentedRenditionFunctionName").to_owned(),
        Duration::from_secs(120),
    ));
    let results = results_for(&tap, &key, rendition_profiles().len()).await;
    tap.close().await;
    assert!(killer.await.unwrap(), "no segment task was seen running ffmpeg to kill");

    let source_frames = (LONG.fps as f64 * LONG_SECONDS).round() as usize;
    let frame = 1.0 / LONG.fps as f64;
    let audio_frame = 1024.0 / 48_000.0;
    for profile in rendition_profiles() {
        let mine = of_profile(&results, profile);
        let finals: Vec<_> = mine.iter().filter(|r| r.status != ResultStatus::InProgress).collect();
        assert_eq!(finals.len(), 1, "{profile}: one outcome, answered once: {finals:#?}");
        let result = finals[0];
        assert_eq!(result.status, ResultStatus::Available, "{result:#?}");
        // Progress while it ran: parts done of all parts (the video and audio segments).
        let progress: Vec<_> = mine.iter().filter_map(|r| r.progress.as_ref()).collect();
        assert!(!progress.is_empty(), "{profile}: no progress was published");
        let total = progress[0].parts_total;
        assert!(total >= 3 && progress.iter().all(|p| p.parts_total == total && p.parts_done <= total));
        assert!(
            progress.iter().any(|p| p.parts_done == total && p.percent == 100),
            "{progress:?}"
        );
        // Its compute adds up the plan, every part and the join (a killed attempt is not seen).
        let compute = result.compute.as_ref().unwrap();
        assert_eq!(compute.invocations, Some(total + 2), "{compute:?}");
        let output = result.output.as_ref().unwrap();
        assert_eq!(output.key, format!("renditions/{key}/{profile}.mp4"));
        // 30 minutes of MP4 audio (timestamps in samples) in the function's default audio
        // segments of 5 minutes.
        assert!(
            output
                .note
                .as_deref()
                .unwrap_or("")
                .contains("segments joined by stream copy, audio in 6 segments"),
            "{output:?}"
        );

        // The joined file: every source frame once, on the frame clock, audio unbroken.
        let local = env.work.path().join(format!("{profile}.mp4"));
        shared::storage::download_to_file(&env.clients.s3, &output.bucket, &output.key, &local)
            .await
            .unwrap();
        let video = video_frame_times(&local);
        assert_eq!(video.len(), source_frames, "{profile}: frame count");
        for (n, start) in video.iter().enumerate() {
            assert!(
                (start - n as f64 * frame).abs() < frame / 4.0,
                "{profile}: frame {n} shown at {start}"
            );
        }
        let video_end = video.last().unwrap() + frame;
        assert!(
            (video_end - LONG_SECONDS).abs() <= frame + 1e-6,
            "{profile}: video ends at {video_end}"
        );
        let audio = audio_frame_spans(&local, 48_000.0);
        for pair in audio.windows(2) {
            let gap = pair[1].0 - pair[0].1;
            assert!(
                gap.abs() <= audio_frame,
                "{profile}: audio gap of {gap:.4} s at {:.3} s",
                pair[0].1
            );
        }
        let audio_end = audio.last().unwrap().1;
        assert!(
            (audio_end - video_end).abs() <= audio_frame + 1e-6,
            "{profile}: audio ends at {audio_end}, video at {video_end}"
        );
    }

    // One execution per profile, however many notices; no part left in scratch.
    let executions = env.segmented_executions(&key).await;
    let mut names: Vec<&str> = executions.iter().map(|e| e.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(executions.len(), rendition_profiles().len(), "{executions:#?}");
    assert_eq!(names.len(), executions.len());
    assert!(executions.iter().all(|e| e.status == "SUCCEEDED"), "{executions:#?}");
    for execution in &executions {
        // The parts ran as the child executions of one Distributed Map Run: 15 video segments
        // of 120 s and 6 audio segments of 5 minutes, each done (once: a redone part is retried
        // inside its child).
        assert_eq!(execution.map_runs, [(21, 21, 0)], "{execution:#?}");
        assert_no_scratch_left(&env, execution).await;
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_corrupt_stretch_mid_file_fails_the_segmented_rendition_by_name_with_no_output() {
    let env = TestEnv::load().await;
    let sample = env
        .sample(SampleSpec {
            width: 320,
            height: 180,
            fps: 30,
            // Two of the local stack's 120 s segments.
            seconds: 150.0,
            with_audio: true,
        })
        .await;
    // 200 kB of noise in the middle of the media data (the index is at the front: faststart).
    let mut bytes = std::fs::read(&sample).unwrap();
    let middle = bytes.len() / 2;
    let mut noise = 0x9E37_79B9u32;
    for byte in &mut bytes[middle..middle + 200_000] {
        noise ^= noise << 13;
        noise ^= noise >> 17;
        noise ^= noise << 5;
        *byte = noise as u8;
    }
    let tap = env.results_tap("segmented-corrupt").await;
    let key = format!("uploads/e2e/{}/damaged in the middle.mp4", unique_suffix());
    harness::upload_bytes(&env.clients.s3, env.source_bucket(), &key, bytes)
        .await
        .unwrap();
    let results = results_for(&tap, &key, rendition_profiles().len()).await;
    tap.close().await;
    for profile in rendition_profiles() {
        let finals: Vec<_> = of_profile(&results, profile)
            .into_iter()
            .filter(|r| r.status != ResultStatus::InProgress)
            .collect();
        assert_eq!(finals.len(), 1, "{profile}: {finals:#?}");
        // named by the segment where the damage is
        assert_failed(finals[0], Code::CorruptInput, "segment ");
        // No partial object at the final key, and no part left in scratch.
        let at_final_key = list_keys(&env.clients.s3, env.output_bucket(), &format!("renditions/{key}/"))
            .await
            .unwrap();
        assert!(at_final_key.is_empty(), "{at_final_key:?}");
    }
    let executions = env.segmented_executions(&key).await;
    assert_eq!(executions.len(), rendition_profiles().len(), "{executions:#?}");
    for execution in &executions {
        assert_eq!(execution.status, "FAILED", "{execution:?}");
        // The damaged segment failed its child execution, and that its Map Run; the result's
        // reason above was read from that child.
        let [(items, _, failed)] = execution.map_runs[..] else {
            panic!("not one Map Run: {execution:#?}");
        };
        assert!(items == 3 && failed >= 1, "{execution:#?}");
        assert_no_scratch_left(&env, execution).await;
    }
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_stopped_execution_is_answered_as_failed_by_name_and_its_scratch_cleared() {
    let env = TestEnv::load().await;
    let suffix = unique_suffix();
    // No encode is needed: the execution is stopped before its plan runs, so its source need
    // not exist, and a part is put in its scratch by hand.
    let key = format!("elsewhere/e2e/{suffix}/stopped by an operator.mp4");
    let name = format!("e2e-stopped-{suffix}");
    let job = SegmentedJob {
        version: 1,
        source: ObjectRef {
            bucket: env.source_bucket().to_owned(),
            key: key.clone(),
            etag: None,
        },
        source_version: suffix.clone(),
        profile: rendition_profiles()[0].to_owned(),
        output_bucket: env.output_bucket().to_owned(),
        output_key: format!("renditions/{key}/{}.mp4", rendition_profiles()[0]),
        scratch_prefix: format!("scratch/renditions/{name}/"),
    };
    harness::upload_bytes(
        &env.clients.s3,
        env.output_bucket(),
        &format!("{}video-00000.ts", job.scratch_prefix),
        vec![0x47; 188],
    )
    .await
    .unwrap();
    let tap = env.results_tap("segmented-stopped").await;
    let sfn = &env.clients.sfn;
    let started = sfn
        .start_execution()
        .state_machine_arn(env.outputs.get("SegmentedRenditionStateMachineArn"))
        .name(&name)
        .input(serde_json::to_string(&ExecutionInput { job }).unwrap())
        .send()
        .await
        .unwrap();
    sfn.stop_execution()
        .execution_arn(started.execution_arn())
        .cause("stopped by the e2e test")
        .send()
        .await
        .unwrap();

    let results = results_for(&tap, &key, 1).await;
    tap.close().await;
    assert_eq!(results.len(), 1, "one answer: {results:#?}");
    assert_failed(
        &results[0],
        Code::SegmentedRenditionFailed,
        "the execution was stopped (ABORTED)",
    );
    let executions = env.segmented_executions(&key).await;
    assert_eq!(executions.len(), 1, "{executions:#?}");
    assert_eq!(executions[0].status, "ABORTED");
    assert_no_scratch_left(&env, &executions[0]).await;
}
