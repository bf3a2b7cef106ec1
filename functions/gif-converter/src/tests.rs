//! The task store's conditional writes against a mocked DynamoDB (`aws-smithy-mocks`): what a
//! redelivered message finds, and which writes are refused.

use super::*;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

const TASK: &str = "3f2b8c1e-9d4a-4b6e-8f00-1234567890ab";

fn store(rules: &[&Rule]) -> TaskStore {
    TaskStore {
        dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |c| c
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())),
        table: "tasks".into(),
    }
}

fn condition_fails() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item).then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
    })
}

fn item_with_status(status: Option<&'static str>) -> Rule {
    mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
        GetItemOutput::builder()
            .set_item(status.map(|status| {
                [("task_id".to_owned(), s(TASK)), ("status".to_owned(), s(status))]
                    .into_iter()
                    .collect()
            }))
            .build()
    })
}

#[tokio::test]
async fn a_queued_task_is_claimed_with_a_condition_that_excludes_final_states() {
    let claim = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            let condition = r.condition_expression().unwrap_or("");
            let values = r.expression_attribute_values().unwrap();
            condition.contains("#status = :queued OR #status = :running")
                && condition.contains("attribute_exists(#id)")
                && values.get(":running") == Some(&s(TaskStatus::Running.as_str()))
                && values.get(":run") == Some(&s("run-1"))
        })
        .then_output(|| UpdateItemOutput::builder().build());
    assert_eq!(store(&[&claim]).claim(TASK, "run-1").await.unwrap(), Claim::Claimed);
    assert_eq!(claim.num_calls(), 1);
}

#[tokio::test]
async fn a_redelivered_message_for_a_done_or_failed_task_finds_it_final() {
    for status in [TaskStatus::Done, TaskStatus::Failed] {
        let refused = condition_fails();
        let read = item_with_status(Some(status.as_str()));
        let claim = store(&[&refused, &read]).claim(TASK, "run-2").await.unwrap();
        assert_eq!(claim, Claim::AlreadyFinal(status));
    }
    let refused = condition_fails();
    let gone = item_with_status(None);
    assert_eq!(
        store(&[&refused, &gone]).claim(TASK, "run-2").await.unwrap(),
        Claim::Missing
    );
}

#[tokio::test]
async fn writes_of_a_superseded_run_are_refused_not_failed() {
    let refused = condition_fails();
    let store = store(&[&refused]);
    assert!(!store.progress(TASK, "old-run", 50).await.unwrap());
    let output = GifOutput {
        bucket: "b".into(),
        key: "gifs/x.gif".into(),
        bytes: 1,
        info: GifInfo {
            width: 1,
            height: 1,
            frames: 1,
        },
    };
    assert!(!store.done(TASK, "old-run", &output).await.unwrap());
    assert!(!store.failed(TASK, "old-run", Code::GifFailed, "y").await.unwrap());
}

#[tokio::test]
async fn the_final_write_names_the_run_and_requires_running() {
    let done = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            let values = r.expression_attribute_values().unwrap();
            r.condition_expression() == Some("#status = :running AND #run = :run")
                && values.get(":key") == Some(&s("gifs/t.gif"))
                && values.get(":frames") == Some(&n(20))
                && r.update_expression().unwrap_or("").contains("REMOVE #code, #message")
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let output = GifOutput {
        bucket: "out".into(),
        key: "gifs/t.gif".into(),
        bytes: 10,
        info: GifInfo {
            width: 320,
            height: 180,
            frames: 20,
        },
    };
    assert!(store(&[&done]).done(TASK, "run-1", &output).await.unwrap());
    assert_eq!(done.num_calls(), 1);
}

#[test]
fn config_names_every_missing_variable_and_bad_allow_list() {
    let err = Config::from_env(EnvReader::from_pairs([(
        "SOURCE_LOOPBACK_ALLOW_LIST",
        "192.168.1.1:80",
    )]))
    .unwrap_err();
    let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
    assert_eq!(
        names,
        [
            "TASKS_TABLE",
            "GIF_BUCKET",
            "INPUT_BUCKET",
            "SOURCE_LOOPBACK_ALLOW_LIST",
            "DEAD_LETTER_QUEUE_URL"
        ]
    );
}

#[tokio::test]
async fn a_job_for_a_task_that_does_not_exist_is_parked_in_the_dlq_by_name_not_dropped() {
    let refused = condition_fails();
    let gone = item_with_status(None);
    let parked = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|r| {
            r.queue_url() == Some("http://localhost/000000000000/gif-dlq")
                && r.message_attributes()
                    .and_then(|a| a.get(shared::sqs::REJECTION_CODE))
                    .and_then(|v| v.string_value())
                    == Some(Code::TaskNotFound.as_str())
                && r.message_body().unwrap_or("").contains(TASK)
        })
        .then_output(|| aws_sdk_sqs::operation::send_message::SendMessageOutput::builder().build());
    let config = Config::from_env(EnvReader::from_pairs([
        ("TASKS_TABLE", "tasks"),
        ("GIF_BUCKET", "out"),
        ("INPUT_BUCKET", "in"),
        ("DEAD_LETTER_QUEUE_URL", "http://localhost/000000000000/gif-dlq"),
    ]))
    .unwrap();
    let converter = Converter {
        tasks: store(&[&refused, &gone]),
        s3: mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[]),
        sqs: mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&parked]),
        fetcher: crate::fetch::SafeFetcher::new(config.policy.clone(), &config.input_bucket, config.fetch).unwrap(),
        config,
    };
    let job = GifJob {
        version: GIF_JOB_VERSION,
        task_id: TASK.into(),
        src_url: "s3://in/a.mp4".into(),
        params: GifParams {
            start_secs: 0.0,
            duration_secs: 1.0,
            width: 160,
            fps: 5,
        },
    };
    let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [{
        "messageId": "m1",
        "body": serde_json::to_string(&job).unwrap(),
        "attributes": {"ApproximateReceiveCount": "1"},
    }]}))
    .unwrap();
    let mut context = lambda_runtime::Context::default();
    context.deadline = (std::time::SystemTime::now() + Duration::from_secs(120))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let response = converter.handle(LambdaEvent::new(event, context)).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "the message is done");
    assert_eq!(parked.num_calls(), 1, "and kept in the DLQ with its reason");
}
