//! Test media for the suite's tests and benchmarks, made and checked with the real ffmpeg and
//! ffprobe: sample videos and camera recordings ([`samples`]), and checks of what a function
//! produced ([`checks`]: frame counts, decode errors, PSNR against the source, dimensions).
//! It needs no AWS, so tests beside a function's code (e.g. the clip trimmer's cutting tests) use
//! it as well as the end-to-end harness.

pub mod checks;
pub mod samples;

pub use samples::{make_recordings, make_sample, Recorder, SampleSpec};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
