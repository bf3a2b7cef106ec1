//! What every function of the suite shares.
//!
//! * [`config`]: typed configuration read once from the environment, naming every bad variable.
//! * [`clients`]: the AWS SDK configuration and clients, built once at cold start.
//! * [`s3_event`]: S3 event key decoding and the `s3:TestEvent` check.
//! * [`ffmpeg`]: ffmpeg/ffprobe as supervised children with an argument vector and a deadline.
//! * [`probe`]: ffprobe's report as typed data.
//! * [`source_fence`]: the demuxers and protocols an uploaded source may be read with.
//! * [`storage`]: streaming S3 download and (multipart) upload, never buffering a whole object.
//! * [`contracts`]: the messages the functions exchange, versioned, with JSON fixtures.
//! * [`profiles`]: rendition profiles, read from `job-templates/renditions/`.
//! * [`renditions`]: a rendition's note, output metadata and outcome key, however it was made.
//! * [`segments`]: a long source cut on the output's keyframe grid, encoded in parts, joined exactly.
//! * [`error`]: one error type that says whether retrying can help.
//! * [`codes`]: every stable outcome code ([`Code`]), one enum, each with when it is used.
//! * [`wire`]: how an enum of codes or statuses gets its one spelling on the wire.
//! * [`ledger`]: one published result per outcome, whatever the duplicates (DynamoDB conditional writes).
//! * [`sqs`]: per-message outcomes for SQS batches (`ReportBatchItemFailures`).
//! * [`logging`]: `tracing` set up for Lambda (JSON lines).
//! * [`gif`]: the GIF task's bounds and table attributes (its messages are in [`contracts::gif`]).
//! * [`source_url`]: which URLs a GIF task may read (schemes, address policy, allow-list).
//!
//! Crate choices: `thiserror` for error enums (the runtime's own examples use it), `tracing` with
//! `tracing-subscriber`'s JSON formatter (what the Lambda runtime integrates with), and
//! `percent-encoding` for S3 keys, and the `url` crate (WHATWG parsing, as browsers do) for
//! source URLs, where normalising every spelling of a host is the point.

pub mod clients;
pub mod codes;
pub mod config;
pub mod contracts;
pub mod error;
pub mod ffmpeg;
pub mod gif;
pub mod ledger;
pub mod logging;
pub mod probe;
pub mod profiles;
pub mod publish;
pub mod renditions;
pub mod s3_event;
pub mod segments;
pub mod source_fence;
pub mod source_url;
pub mod sqs;
pub mod storage;
pub mod wire;

pub use codes::Code;
pub use error::{ErrorKind, ProcessingError};
