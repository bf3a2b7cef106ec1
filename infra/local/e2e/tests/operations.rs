//! End-to-end tests of operating the stack: dead letters go back to work with `make redrive`,
//! run as a user runs it, and the work they carry is then really done.
//!
//! They need the deployed local stack, so they are `#[ignore]`d for a plain `cargo test`;
//! `make test` runs them with `--ignored`. They use the 1080p and upload-publisher DLQs and
//! judge only their own messages, recognised by a key unique to the run: each first leaves a
//! dead letter of "an earlier run" in its DLQ, as a long-lived stack would hold (the reason
//! `make test` once failed after `make demo`), and must pass all the same.

use std::process::Command;
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use harness::{
    peek_queue_mentioning, rejection_code, rendition_output, rendition_profiles, repo_root, unique_suffix, upload,
    upload_notice, SampleSpec, Tap, TestEnv,
};
use shared::contracts::{PipelineResult, ResultStatus};
use shared::Code;

const WAIT: Duration = Duration::from_secs(240);

/// A small video: the point is the redrive, not the transcode.
const SMALL: SampleSpec = SampleSpec {
    width: 320,
    height: 180,
    fps: 15,
    seconds: 1.0,
    with_audio: false,
};

/// `make redrive LOCAL=1 [QUEUE=…] [extra…]` from the repository root, as a user types it;
/// returns what it printed, after checking it succeeded.
fn make_redrive(args: &[&str]) -> String {
    let output = Command::new("make")
        .current_dir(repo_root())
        .args(["--no-print-directory", "redrive", "LOCAL=1"])
        .args(args)
        .output()
        .expect("make runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "make redrive {args:?} failed:\n{stdout}\n{stderr}"
    );
    println!("make redrive {}:\n{stdout}", args.join(" "));
    stdout
}

/// The line the redrive prints for the queue it worked on.
fn summary_line(printed: &str) -> &str {
    printed
        .lines()
        .find(|l| l.starts_with("redrive "))
        .unwrap_or_else(|| panic!("no summary in {printed}"))
}

/// A sample uploaded where no notification fires (outside both watched prefixes), so the only
/// way its work starts is the dead letter we redrive.
async fn quiet_upload(env: &TestEnv, run: &str) -> (String, u64) {
    let sample = env.sample(SMALL).await;
    let key = format!("redrive-e2e/{run}/clip.mp4");
    upload(&env.clients.s3, env.source_bucket(), &key, &sample)
        .await
        .unwrap();
    (key, std::fs::metadata(&sample).unwrap().len())
}

#[derive(PartialEq)]
enum DlqKind {
    /// A work queue's DLQ: the message itself.
    Work,
    /// A function's on-failure destination: the invocation record.
    OnFailure,
}

/// A dead letter that this test did not make, as `make demo` or an earlier run leaves one: a
/// notice (or, for an on-failure DLQ, an invocation record) for a video that is really there,
/// so that redriving it does real work. Returns nothing: the test must not need to know it.
async fn leave_an_earlier_runs_dead_letter(env: &TestEnv, dlq_url: &str, dlq: DlqKind) {
    let (key, size) = quiet_upload(env, &format!("earlier-{}", unique_suffix())).await;
    let notice = serde_json::to_value(upload_notice(env.source_bucket(), &key, size, None)).unwrap();
    let body = if dlq == DlqKind::OnFailure {
        let head = env.head_source(&key).await;
        let etag = head.e_tag().unwrap_or_default();
        let event = harness::s3_put_event(env.source_bucket(), &key, size, etag, "0");
        serde_json::json!({
            "version": "1.0",
            "requestContext": {"requestId": "earlier", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event,
        })
    } else {
        notice
    };
    env.clients
        .sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(body.to_string())
        .send()
        .await
        .unwrap();
}

async fn results_for(tap: &Tap, key: &str, count: usize) -> Vec<PipelineResult> {
    let key = key.to_owned();
    tap.collect_results(WAIT, |r| r.source.key == key, |rs| rs.len() >= count, |_, _| {})
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn a_work_dead_letter_goes_back_to_its_queue_and_is_rendered_and_a_rejected_one_stays() {
    let env = TestEnv::load().await;
    let run = unique_suffix();
    let (key, size) = quiet_upload(&env, &run).await;
    let dlq_url = env.outputs.get("Rendition1080DeadLetterQueueUrl");
    let sqs = &env.clients.sqs;
    leave_an_earlier_runs_dead_letter(&env, dlq_url, DlqKind::Work).await;
    // What the worker would have left after its retries: the upload notice itself.
    let notice = serde_json::to_string(&upload_notice(env.source_bucket(), &key, size, None)).unwrap();
    sqs.send_message()
        .queue_url(dlq_url)
        .message_body(notice)
        .send()
        .await
        .unwrap();
    // And what a worker parks at once: not the contract, with its rejection code.
    let code = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(Code::MalformedMessage.as_str())
        .build()
        .unwrap();
    sqs.send_message()
        .queue_url(dlq_url)
        .message_body(format!("{{\"not\":\"a notice\",\"run\":\"{run}\"}}"))
        .message_attributes(shared::sqs::REJECTION_CODE, code)
        .send()
        .await
        .unwrap();

    let tap = env.results_tap("redrive-work").await;
    let queue_name = dlq_url.rsplit('/').next().unwrap();
    let printed = make_redrive(&[&format!("QUEUE={queue_name}")]);
    let summary = summary_line(&printed);
    // The earlier run's letter is moved too: the counts include it, so only "some moved, some
    // rejected skipped, none failed" is ours to judge here; our own messages are checked below.
    assert!(!summary.contains("moved 0,"), "{summary}");
    assert!(
        summary.contains(&format!("rejected {}", Code::MalformedMessage)),
        "{summary}"
    );
    assert!(!summary.contains("skipped 0;"), "{summary}");
    assert!(summary.contains("failed 0"), "{summary}");

    let results = results_for(&tap, &key, 1).await;
    tap.close().await;
    let result = &results[0];
    assert_eq!(result.profile.as_deref(), Some("1080p"), "{result:#?}");
    assert_eq!(result.status, ResultStatus::Available, "{result:#?}");

    // The notice left the DLQ; the rejected message stayed, still saying why.
    let left = peek_queue_mentioning(sqs, dlq_url, &run).await.unwrap();
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(rejection_code(&left[0]), Some(Code::MalformedMessage));
    // Clean up the rejected message so the DLQ is empty again (its alarm would stay on).
    let received = sqs
        .receive_message()
        .queue_url(dlq_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    for message in received.messages.unwrap_or_default() {
        if message.body.as_deref().unwrap_or("").contains(&run) {
            sqs.delete_message()
                .queue_url(dlq_url)
                .receipt_handle(message.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert!(peek_queue_mentioning(sqs, dlq_url, &run).await.unwrap().is_empty());
    println!(
        "work DLQ: moved 1, skipped 1 (rejected), result {:?}; DLQ holds none of this run",
        result.status
    );
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn an_invocation_record_is_reinvoked_with_its_original_event_and_the_renditions_are_made() {
    let env = TestEnv::load().await;
    let run = unique_suffix();
    let (key, size) = quiet_upload(&env, &run).await;
    let function = env.outputs.get("UploadPublisherFunctionName");
    let bucket = env.source_bucket();
    // The S3 event the publisher failed on (its real event fixture, pointed at our object),
    // inside the record Lambda writes to the OnFailure destination after its async retries.
    let fixture = repo_root().join("functions/upload-publisher/tests/fixtures/s3-put.json");
    let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = bucket.into();
    s3["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
    // S3 URL-encodes keys in events; this one has nothing to encode.
    s3["object"]["key"] = key.clone().into();
    s3["object"]["size"] = size.into();
    // The fixture's ETag is not our object's: leave it out, as the publisher allows.
    s3["object"].as_object_mut().unwrap().remove("eTag");
    let record = serde_json::json!({
        "version": "1.0",
        "timestamp": "2026-11-21T09:00:05.000Z",
        "requestContext": {
            "requestId": format!("e2e-{run}"),
            "functionArn": format!("arn:aws:lambda:us-east-1:000000000000:function:{function}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Throttled", "errorMessage": "SNS was throttling (e2e)"}
    });
    let dlq_url = env.outputs.get("UploadPublisherDeadLetterQueueUrl");
    leave_an_earlier_runs_dead_letter(&env, dlq_url, DlqKind::OnFailure).await;
    env.clients
        .sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(record.to_string())
        .send()
        .await
        .unwrap();

    let tap = env.results_tap("redrive-invocation").await;
    // By its logical id this time: the command accepts name, logical id or URL.
    let printed = make_redrive(&["QUEUE=UploadPublisherDeadLetterQueue"]);
    let summary = summary_line(&printed);
    assert!(summary.contains("on-failure -> function"), "{summary}");
    // The earlier run's record is redriven as well; this test's own record is checked below by
    // its renditions.
    assert!(!summary.contains("moved 0,"), "{summary}");
    assert!(summary.contains("failed 0"), "{summary}");

    // The publisher announced the video, and both workers made their rendition.
    let results = results_for(&tap, &key, rendition_profiles().len()).await;
    tap.close().await;
    for result in &results {
        assert_eq!(result.status, ResultStatus::Available, "{result:#?}");
    }
    let mut profiles: Vec<_> = results.iter().filter_map(|r| r.profile.clone()).collect();
    profiles.sort();
    let mut deployed = rendition_profiles();
    deployed.sort();
    assert_eq!(profiles, deployed);
    assert!(peek_queue_mentioning(&env.clients.sqs, dlq_url, &run)
        .await
        .unwrap()
        .is_empty());
    println!("on-failure DLQ: re-invoked 1, results {profiles:?} available; DLQ holds none of this run");
}

#[tokio::test]
#[ignore = "needs the local stack: `make test` runs it"]
async fn without_a_queue_redrive_lists_every_dead_letter_queue_with_its_depth() {
    let env = TestEnv::load().await;
    let printed = make_redrive(&[]);
    let dlqs: Vec<String> = [
        "UploadPublisherDeadLetterQueueUrl",
        "MediaConvertSubmitterDeadLetterQueueUrl",
        "MediaConvertResultsDeadLetterQueueUrl",
        "GifJobsDeadLetterQueueUrl",
        "ClipRequestsDeadLetterQueueUrl",
        "SegmentedRenditionDeadLetterQueueUrl",
    ]
    .map(String::from)
    .into_iter()
    .chain(
        rendition_profiles()
            .into_iter()
            .map(|p| rendition_output(p, "DeadLetterQueueUrl")),
    )
    .collect();
    for output in &dlqs {
        let name = env.outputs.get(output).rsplit('/').next().unwrap();
        assert!(printed.contains(name), "{name} not listed:\n{printed}");
    }
    assert!(
        printed.contains(&format!("{} dead-letter queues", dlqs.len())),
        "{printed}"
    );
}
