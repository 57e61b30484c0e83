#!/usr/bin/env bash
# Measures the proxy injector webhook over HTTPS keep-alive: the webhook on one core (one event-loop thread,
# pinned to CPU 0), `hey` on the other, POSTing a typical pod's AdmissionReview for DURATION seconds with
# CONCURRENCY connections. Prints hey's summary (requests/s, latency distribution).
set -euo pipefail
cd "$(dirname "$0")"
DURATION="${DURATION:-15}"
CONCURRENCY="${CONCURRENCY:-8}"

if ! command -v hey >/dev/null || ! command -v curl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey curl
fi
swift build -c release --product WebhookLoad
review="$(mktemp)"
log="$(mktemp)"
taskset -c 0 .build/release/WebhookLoad "$review" $((DURATION + 30)) >"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$review" "$log"' EXIT
for _ in $(seq 100); do
    grep -q '^port ' "$log" && break
    sleep 0.1
done
port="$(awk '/^port /{print $2}' "$log")"
[ -n "$port" ] || { echo "the webhook did not start" >&2; cat "$log" >&2; exit 1; }
# Every measured review must be a real injection: check that one answer carries the JSON patch.
if ! curl -sk --data-binary @"$review" -H 'Content-Type: application/json' "https://127.0.0.1:$port/" \
    | grep -q '"patchType":"JSONPatch"'; then
    echo "the webhook does not inject the review's pod; not measuring" >&2
    cat "$log" >&2
    exit 1
fi
# Warm up, then measure.
taskset -c 1 hey -z 2s -c "$CONCURRENCY" -m POST -T application/json -D "$review" "https://127.0.0.1:$port/" >/dev/null
taskset -c 1 hey -z "${DURATION}s" -c "$CONCURRENCY" -m POST -T application/json -D "$review" \
    "https://127.0.0.1:$port/" | sed -n '/Summary/,/Status code distribution/p;/\[200\]/p;/Error/,$p'
