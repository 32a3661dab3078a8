#!/usr/bin/env bash
# OpenAPI conformance: runs schemathesis (pinned below) against a fresh `wag serve` with the
# sandbox connector, reading the server's own /docs/openapi.json, with every check schemathesis
# has (status codes, content types, response headers and schemas, acceptance of valid and
# rejection of invalid data, missing headers, ignored auth, unsupported methods, …), a fixed
# seed and a bounded number of examples. Any failure fails the script.
#
#   WAG_BIN=/path/to/wag end2end/openapi-conformance.sh
#
# Optional: WAG_CONFORMANCE_EXAMPLES (examples per operation and phase, default 300),
# WAG_CONFORMANCE_SEED (default 12), WAG_CONFORMANCE_KEEP=1 keeps the work dir (server log,
# schemathesis config and reports), WAG_SCHEMATHESIS_VENV (default
# /root/.cache/wag-venv-schemathesis).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCHEMATHESIS_VERSION=4.32.5
EXAMPLES="${WAG_CONFORMANCE_EXAMPLES:-300}"
SEED="${WAG_CONFORMANCE_SEED:-12}"
VENV="${WAG_SCHEMATHESIS_VENV:-/root/.cache/wag-venv-schemathesis}"

die() {
  echo "openapi-conformance: $*" >&2
  exit 1
}

[ -n "${WAG_BIN:-}" ] || die 'WAG_BIN is not set. Build the server (`cargo build -p server`) and run e.g.
  WAG_BIN="${CARGO_TARGET_DIR:-target}/debug/wag" end2end/openapi-conformance.sh'
WAG_BIN="$(readlink -f "$WAG_BIN")"
[ -f "$WAG_BIN" ] && [ -x "$WAG_BIN" ] || die "WAG_BIN=$WAG_BIN is missing or not executable"
command -v python3 >/dev/null || die "python3 is not on PATH"
command -v curl >/dev/null || die "curl is not on PATH"

# --- schemathesis, pinned, in its own venv ----------------------------------------------------
if [ ! -x "$VENV/bin/st" ] || [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV"; then
    # Debian's python3 keeps venv in a package of its own.
    echo "python3 -m venv failed: installing Debian's python3-venv"
    apt-get update -q && apt-get install -y -q python3-venv
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$VENV/bin/st" --version

# --- a fresh server ---------------------------------------------------------------------------
WORK="$(mktemp -d /tmp/wag-conformance.XXXXXX)"
DATA="$WORK/data"
mkdir -p "$DATA"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
SERVER_PID=""

cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    echo "--- last lines of the server log ($WORK/wag.log) ---" >&2
    tail -n 40 "$WORK/wag.log" >&2 || true
  fi
  if [ "$status" -eq 0 ] && [ -z "${WAG_CONFORMANCE_KEEP:-}" ]; then
    rm -rf "$WORK"
  else
    echo "kept $WORK" >&2
  fi
  exit "$status"
}
trap cleanup EXIT

# SQLite in the data dir; the sandbox connector; limits far above what the run sends, so that
# generated sends reach the answers a real send gives instead of all being throttled.
unset WAG_DATABASE_URL
export WAG_DATA_DIR="$DATA" WAG_LOG_FORMAT=text WAG_SANDBOX_ENABLED=true
export WAG_SEND_RATE_PER_MINUTE=1000000 WAG_NEW_RECIPIENTS_PER_HOUR=1000000 WAG_REVIEW_PAUSE_BLOCKS=10000

WAG_LISTEN="127.0.0.1:$PORT" WAG_PUBLIC_BASE_URL="$BASE" "$WAG_BIN" serve >"$WORK/wag.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
  if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || die "wag serve exited"
  sleep 0.5
done
curl -fsS "$BASE/healthz" >/dev/null || die "wag serve did not answer /healthz within 60 s"
echo "wag serve on $BASE (data dir $DATA)"

# --- an account, a key and two linked sandbox instances -----------------------------------------
admin() { "$WAG_BIN" admin "$@"; }
EMAIL="conformance@example.com"
admin create-user --email "$EMAIL" --password "correct horse battery" --plan scale >/dev/null
admin set-plan --email "$EMAIL" --plan scale --daily-limit 1000000 --monthly-limit 10000000 >/dev/null
KEY="$(admin create-api-key --email "$EMAIL" --name conformance | tail -n 1)"
# One instance for sends, inbound messages and calls; one of its own for disconnect and
# reconnect, so that a generated disconnect does not turn later sends into failures.
SEND_INSTANCE="$(admin create-instance --email "$EMAIL" --name send --connector sandbox | tail -n 1)"
SWITCH_INSTANCE="$(admin create-instance --email "$EMAIL" --name switch --connector sandbox | tail -n 1)"
for instance in "$SEND_INSTANCE" "$SWITCH_INSTANCE"; do
  curl -fsS -X POST "$BASE/api/sandbox/link" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' --data "{\"instance_id\": \"$instance\"}" >/dev/null
done
echo "account $EMAIL, instances $SEND_INSTANCE and $SWITCH_INSTANCE linked"

# --- schemathesis -----------------------------------------------------------------------------
# Values that the document cannot describe come from dictionaries:
# - instance ids: generated ids never exist (404 invalid_instance); about half of the requests
#   use the real ones, so that sends, dry runs, inbound messages and calls are answered too;
# - phone numbers: validity for their country (libphonenumber) is no pattern, so `phone` and
#   `from` are valid numbers (the sandbox's fictional +1 555 range, avoiding its magic failure
#   numbers +1 555 000 0001-3, and real ones); their shape is still in the document.
cat >"$WORK/schemathesis.toml" <<EOF
seed = $SEED
workers = 1
hooks = "$HERE/schemathesis_hooks.py"
request-timeout = 30

[generation]
max-examples = $EXAMPLES
database = "none"

# Ids come from the dictionaries below only: values learned from earlier responses would let a
# generated disconnect reach the instance that sends use (a send through a disconnected
# instance rightly answers 502 gateway_send_failed).
[phases.examples.extra-data-sources]
responses = false

[phases.coverage.extra-data-sources]
responses = false

[phases.fuzzing.extra-data-sources]
responses = false

[auth.openapi.bearer]
bearer = "$KEY"

[reports]
directory = "$WORK/reports"

[dictionaries.send_instances]
values = ["$SEND_INSTANCE"]

[dictionaries.switch_instances]
values = ["$SWITCH_INSTANCE"]

[dictionaries.phones]
values = ["+15550101234", "+15550109876", "+966501234567", "+442079460958", "+1 (555) 010-2222"]

[parameters]
"body.phone" = { dictionary = "phones" }
"body.from" = { dictionary = "phones" }

[[operations]]
include-path-regex = "^/api/(send-message|sandbox/(link|inbound|call))$"
parameters = { "body.instance_id" = { dictionary = "send_instances", probability = 0.5 } }

[[operations]]
include-path-regex = "^/api/sandbox/(disconnect|reconnect)$"
parameters = { "body.instance_id" = { dictionary = "switch_instances", probability = 0.5 } }
EOF

echo "schemathesis: seed $SEED, at most $EXAMPLES examples per operation and phase"
started=$SECONDS
set +e
# From the work dir: schemathesis keeps a cache (.schemathesis/) where it runs.
(cd "$WORK" && "$VENV/bin/st" --config-file "$WORK/schemathesis.toml" run "$BASE/docs/openapi.json" \
  --checks all --report junit,ndjson --no-color)
status=$?
set -e
echo "schemathesis finished in $((SECONDS - started)) s with status $status"
[ "$status" -eq 0 ] || die "schemathesis reported failures (see above; reports in $WORK/reports)"
echo "openapi conformance: no failures"
