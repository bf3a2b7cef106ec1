#!/usr/bin/env bash
# Shows that `cargo lambda deploy` — how users ship one function — works against the local
# stack: deploys the upload publisher's Lambda build as a separate function, invokes it with
# S3's test event through the Lambda API, and checks its answer. Run through stack.sh run, which
# names the stack's outputs file (STACK_OUTPUTS).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/infra/local/stack.env"   # SAM_BUILD_DIR
name="${1:-video-suite-cargo-lambda-check}"
outputs="${STACK_OUTPUTS:?run through infra/local/stack.sh run}"
output() { python3 -c "import json,sys; print({o['OutputKey']: o['OutputValue'] for o in json.load(open(sys.argv[1]))}[sys.argv[2]])" "$outputs" "$1"; }

cd "$root/functions/upload-publisher"   # cargo lambda reads the crate's Cargo.toml
cargo lambda deploy \
  --binary-path "$root/$SAM_BUILD_DIR/UploadPublisherFunction/bootstrap" \
  --role "arn:aws:iam::000000000000:role/cargo-lambda-local" \
  --env-var "UPLOADS_TOPIC_ARN=$(output UploadsTopicArn)" \
  --env-var "RESULTS_TOPIC_ARN=$(output ResultsTopicArn)" \
  "$name" >/dev/null
answer="$(cargo lambda invoke --remote --data-file tests/fixtures/s3-test-event.json "$name")"
echo "cargo lambda deploy → $name; invoke answered: $answer"
python3 -c "import json,sys; a=json.loads(sys.argv[1]); assert a == {'published': 0, 'rejected': 0, 'skipped': 1}, a" "$answer"
