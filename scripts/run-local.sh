#!/usr/bin/env bash
# Runs callclock on this machine: moto_server (unless something already
# answers at AWS_ENDPOINT_URL), then `bootstrap local`. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${AWS_REGION:=us-east-1}" "${AWS_ACCESS_KEY_ID:=test}" "${AWS_SECRET_ACCESS_KEY:=test}"
: "${AWS_ENDPOINT_URL:=http://127.0.0.1:5000}" "${ADDR:=127.0.0.1:8080}" "${SWEEP_EVERY:=60s}"
# bootstrap local's --log (text on a terminal, JSON otherwise) and --metrics
# (a file of its own, off the log).
: "${LOG:=auto}" "${METRICS:=.callclock-metrics.jsonl}"
export AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL

answers() { curl -s -o /dev/null --max-time 2 "$AWS_ENDPOINT_URL/moto-api/data.json"; }

moto_pid=""
if answers; then
  echo "run-local: using the AWS endpoint already at $AWS_ENDPOINT_URL" >&2
else
  command -v moto_server >/dev/null || { echo "run-local: moto_server is not installed (pip install 'moto[server]')" >&2; exit 1; }
  hostport=${AWS_ENDPOINT_URL#*://}
  echo "run-local: starting moto_server on $hostport (log: .moto.log)" >&2
  moto_server -H "${hostport%:*}" -p "${hostport##*:}" > .moto.log 2>&1 &
  moto_pid=$!
  trap 'kill $moto_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do answers && break; sleep 0.2; done
  answers || { echo "run-local: moto_server did not start; see .moto.log" >&2; exit 1; }
fi

go build -o bootstrap .
echo "run-local: API on http://$ADDR; for bootstrap invoke and the AWS CLI in another shell:" >&2
echo "  export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=$AWS_REGION AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=<the same secret>" >&2
./bootstrap local --addr "$ADDR" --sweep-every "$SWEEP_EVERY" --log "$LOG" --metrics "$METRICS"
