#!/usr/bin/env bash
# The real binary against a hostile server (tests/support/hostile_vitec.hpp):
# for each way of misbehaving, `backfill` fails the window with the right kind,
# retries only what is worth retrying, ends within the attempts' deadlines
# plus a margin, stays under 64 MiB of peak memory, commits nothing, and no
# piece of the password or its Base64 token reaches the log, the ledger or
# `status`. While vitec.allow_insecure_http is on, start-up and status warn.
source "$(dirname "$0")/lib.sh"
: "${HOSTILE_VITEC:?HOSTILE_VITEC must name the hostile-vitec binary}"
e2e_init hostile_peer

token=$(printf '%s' "e2e:$E2E_PASSWORD" | base64 -w0)
# Every piece of four bytes or more of the token, and the password itself.
patterns=$work/secret-pieces
{
    echo "$E2E_PASSWORD"
    for ((length = 4; length <= ${#token}; length++)); do
        for ((at = 0; at + length <= ${#token}; at++)); do echo "${token:at:length}"; done
    done
} | sort -u >"$patterns"

# expect_no_secret FILE WHAT
expect_no_secret() {
    if grep -F -o -f "$patterns" "$1" >"$work/found" 2>/dev/null; then
        fail "$2 holds a piece of the credentials: $(sort -u "$work/found" | head -n 3 | tr '\n' ' ')"
    fi
}

# start_hostile MODE [hostile-vitec args]: sets hostile_url.
start_hostile() {
    local mode=$1; shift
    rm -f "$work/hostile.port"
    "$HOSTILE_VITEC" --mode "$mode" --port-file "$work/hostile.port" "$@" >"$work/hostile-$mode.log" 2>&1 &
    hostile_pid=$!
    e2e_pids+=("$hostile_pid")
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s "$work/hostile.port" ]] && break
        sleep 0.1
    done
    [[ -s "$work/hostile.port" ]] || fail "hostile-vitec wrote no port file"
    hostile_url="http://127.0.0.1:$(cat "$work/hostile.port")"
}

# A folder another user can read the configuration from: one run goes as one.
confdir=$work/conf
mkdir "$confdir"
chmod 711 "$work"
chmod 755 "$confdir"

timeout_s=2
attempts=3
write_hostile_config() {
    local customer=$1 extra=${2:-}
    cat >"$confdir/config.yaml" <<YAML
database:
  conninfo: ""
  schema: $schema
vitec:
  base_url: $hostile_url
  allow_insecure_http: true
  username: e2e
  password_env: E2E_VITEC_PASSWORD
  request_timeout: ${timeout_s}s
  max_requests_per_second: 1000
$extra
  retry:
    max_attempts: $attempts
    base_delay: 10ms
    max_delay: 50ms
customers:
  - id: $customer
YAML
    chmod 644 "$confdir/config.yaml"
}

# run_backfill NAME [as-user]: backfill of one week in the background, watched
# until it exits; sets code, peak_kib, seconds and dump_owner (the owner of
# /proc/PID/status when last seen running: root when the process made itself
# non-dumpable).
run_backfill() {
    local name=$1 as_user=${2:-}
    local runner=()
    if [[ -n $as_user ]]; then
        runner=(setpriv --reuid="$as_user" --regid="$(id -g "$as_user")" --clear-groups --)
    fi
    local started=$SECONDS
    env PGHOST=127.0.0.1 "${runner[@]}" "$COMEBACK_SYNC" backfill -c "$confdir/config.yaml" \
        --from 2024-01-01 --to 2024-01-07 >"$work/$name.log" 2>&1 &
    local pid=$!
    peak_kib=0
    dump_owner=
    while kill -0 "$pid" 2>/dev/null; do
        local hwm
        hwm=$(memory_kib "$pid" VmHWM || true)
        [[ -n $hwm ]] && ((hwm > peak_kib)) && peak_kib=$hwm
        # The last sample counts: the first may be taken before main() made
        # the process non-dumpable (setpriv itself, or the start of main).
        [[ -z $hwm ]] || dump_owner=$(stat -c %u "/proc/$pid/status" 2>/dev/null || echo "$dump_owner")
        sleep 0.05
    done
    set +e
    wait "$pid"
    code=$?
    set -e
    seconds=$((SECONDS - started))
}

# mode kind retried extra-yaml hostile-args...
check_mode() {
    local mode=$1 kind=$2 retried=$3 extra=$4; shift 4
    local customer="H-$mode"
    note "$mode: expect $kind"
    start_hostile "$mode" "$@"
    write_hostile_config "$customer" "$extra"
    run_backfill "$mode"
    kill "$hostile_pid" 2>/dev/null || true
    local log=$work/$mode.log
    ((code == 1)) || fail "$mode: backfill exited $code, expected 1"
    grep -q "window.failed customer=$customer .*kind=$kind" "$log" ||
        fail "$mode: no window.failed line with kind=$kind: $(grep -m1 window. "$log")"
    if [[ $retried == no ]]; then
        grep -q "window.retry" "$log" && fail "$mode: a $kind failure was retried"
        grep -q "window.failed customer=$customer .*attempt=1 " "$log" || fail "$mode: more than one attempt"
    fi
    # Each attempt ends by its ceiling (twice request_timeout at most); a
    # generous margin for start-up, migrations and a loaded machine.
    ((seconds <= attempts * 2 * timeout_s + 30)) || fail "$mode: took ${seconds}s"
    ((peak_kib > 0 && peak_kib < 64 * 1024)) || fail "$mode: peak RSS ${peak_kib} KiB (limit 64 MiB)"
    expect_no_secret "$log" "$mode: the backfill output"
    [[ "$(sql "SELECT count(*) FROM $schema.comebacks WHERE customer_id = '$customer'")" == 0 ]] ||
        fail "$mode: rows were committed from a failed window"
    local error
    error=$(sql "SELECT last_error FROM $schema.sync_windows WHERE customer_id = '$customer'")
    [[ -n $error ]] || fail "$mode: the ledger holds no error"
    local stored_kind
    stored_kind=$(sql "SELECT last_error_kind FROM $schema.sync_windows WHERE customer_id = '$customer'")
    [[ $stored_kind == "$kind" ]] || fail "$mode: the ledger's error kind is '$stored_kind', not $kind"
    echo "ok: $mode -> $kind in ${seconds}s, peak ${peak_kib} KiB; ledger: ${error:0:160}"
}

check_mode endless-chunk-extension protocol_violation no ""
check_mode endless-trailer protocol_violation no ""
check_mode endless-header protocol_violation no ""
check_mode announced-2gib response_too_large no ""
check_mode endless-chunked-body response_too_large no "  max_response_bytes: 8MiB"
check_mode huge-string field_too_large no ""
check_mode malformed-chunk protocol_violation no ""
check_mode redirect request_rejected no ""
check_mode empty-body broken_response yes ""
check_mode echo-authorization request_rejected no "" --padding 280
check_mode echo-authorization-text request_rejected no "" --padding 270
grep -q "<redacted>" "$work/echo-authorization.log" || fail "the echoed header was not shown as <redacted>"

# The on-call's view of the last failure: status names its kind, beside the
# error, in JSON and in the table.
env PGHOST=127.0.0.1 "$COMEBACK_SYNC" status -c "$confdir/config.yaml" --json >"$work/status.json" 2>&1 ||
    fail "status --json exited $?: $(cat "$work/status.json")"
grep -q '"customer_id":"H-echo-authorization-text"' "$work/status.json" || fail "status --json: $(cat "$work/status.json")"
grep -q '"last_error_kind":"request_rejected"' "$work/status.json" ||
    fail "status --json does not name the failure kind: $(cat "$work/status.json")"
expect_no_secret "$work/status.json" "status --json"
env PGHOST=127.0.0.1 "$COMEBACK_SYNC" status -c "$confdir/config.yaml" >"$work/status.txt" 2>&1 ||
    fail "status exited $?: $(cat "$work/status.txt")"
grep -q '^H-echo-authorization-text .* request_rejected ' "$work/status.txt" ||
    fail "the status table does not name the failure kind: $(cat "$work/status.txt")"
echo "ok: status names the last failure's kind"

# One byte a second, as another user when possible: the process is non-dumpable,
# so /proc/PID/status belongs to root, not to the user it runs as.
as_user=$(id -u)
((EUID == 0)) && as_user=$(id -u nobody)
check_mode_as() {
    local mode=one-byte-per-second customer=H-one-byte-per-second
    note "$mode: expect transient, retried, as uid $as_user"
    start_hostile "$mode"
    write_hostile_config "$customer"
    if ((EUID == 0)); then run_backfill "$mode" "$as_user"; else run_backfill "$mode"; fi
    kill "$hostile_pid" 2>/dev/null || true
    ((code == 1)) || { cat "$work/$mode.log" >&2; fail "$mode: backfill exited $code, expected 1"; }
    grep -q "window.failed customer=$customer .*attempt=$attempts .*kind=transient" "$work/$mode.log" ||
        fail "$mode: the window did not fail as transient after $attempts attempts"
    grep -q "timed out" "$work/$mode.log" || fail "$mode: the error does not say it timed out"
    ((seconds <= attempts * 2 * timeout_s + 30)) || fail "$mode: took ${seconds}s"
    ((peak_kib > 0 && peak_kib < 64 * 1024)) || fail "$mode: peak RSS ${peak_kib} KiB"
    expect_no_secret "$work/$mode.log" "$mode: the backfill output"
    [[ -n $dump_owner ]] || fail "could not read the owner of /proc/PID/status"
    [[ $dump_owner == 0 && $as_user != 0 ]] ||
        fail "the process is dumpable: /proc/PID/status belongs to uid $dump_owner, it ran as $as_user"
    echo "ok: $mode -> transient after $attempts attempts in ${seconds}s; non-dumpable"
}
check_mode_as

note "the ledger, status and the insecure-http warnings"
sql "SELECT * FROM $schema.sync_windows" >"$work/ledger.txt"
sql "SELECT * FROM $schema.rejected_rows" >>"$work/ledger.txt"
expect_no_secret "$work/ledger.txt" "the ledger"
env PGHOST=127.0.0.1 "$COMEBACK_SYNC" status -c "$confdir/config.yaml" >"$work/status.txt" 2>"$work/status.log"
env PGHOST=127.0.0.1 "$COMEBACK_SYNC" status -c "$confdir/config.yaml" --json >"$work/status.json" 2>>"$work/status.log"
expect_no_secret "$work/status.txt" "status"
expect_no_secret "$work/status.json" "status --json"
expect_no_secret "$work/status.log" "status's log"
grep -q "^WARNING: vitec.allow_insecure_http is true" "$work/status.txt" || fail "status does not warn about insecure http"
grep -q '"warnings":\["vitec.allow_insecure_http is true' "$work/status.json" ||
    fail "status --json does not carry the warning"
grep -q "config.insecure_http" "$work/status.log" || fail "no config.insecure_http line at start"
grep -q "config.insecure_http" "$work/endless-header.log" || fail "backfill did not warn about insecure http"
"$COMEBACK_SYNC" check-config -c "$confdir/config.yaml" >"$work/check-config.txt" 2>&1 ||
    fail "check-config failed: $(head -c 500 "$work/check-config.txt")"
expect_no_secret "$work/check-config.txt" "check-config"
grep -q "password: <from environment variable E2E_VITEC_PASSWORD>" "$work/check-config.txt" ||
    fail "check-config does not say where the password comes from"
echo "ok: nothing secret in the ledger, status or check-config; insecure http warned about"

note "run: /metrics and the log hold no secret while the server echoes it"
start_hostile echo-authorization --padding 280
write_hostile_config H-metrics
metrics_port=$(free_port)
printf 'metrics:\n  listen: 127.0.0.1:%s\n' "$metrics_port" >>"$confdir/config.yaml"
start_run run "$confdir/config.yaml" PGHOST=127.0.0.1
wait_for 60 "a failed window of H-metrics" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'H-metrics' AND status = 'failed'"
curl -fsS "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics.txt" || fail "GET /metrics failed"
grep -q 'outcome="request_rejected"' "$work/metrics.txt" || fail "/metrics does not count the rejected requests"
kill -TERM "$run_pid"
set +e; wait "$run_pid"; code=$?; set -e
((code == 0)) || fail "run exited $code after SIGTERM, expected 0"
kill "$hostile_pid" 2>/dev/null || true
expect_no_secret "$work/metrics.txt" "/metrics"
expect_no_secret "$work/run.log" "run's log"
grep -q "<redacted>" "$work/run.log" || fail "run's log does not show the echoed header as <redacted>"
echo "ok: nothing secret in /metrics or run's log"
