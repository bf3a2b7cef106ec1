//! End-to-end tests of every flow on the local stack, in `tests/`: each file one flow or one
//! concern (pipeline, clips, GIF, MediaConvert, bad inputs, reliability, operations, soak). They
//! are `#[ignore]`d so that a plain `cargo test` needs no stack; `make test` deploys a fresh stack
//! of its own and runs them with `--ignored`. The harness they share is the `harness` crate.
