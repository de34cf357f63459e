#!/usr/bin/env bash
# PostgreSQL restarted (pg_ctl restart -m immediate) in the middle of a
# backfill and in the middle of `run`: both recover without a restart of
# their own, the backfill exits 0, and the database equals a clean run's.
# The test runs a cluster of its own: restarting the shared one would
# disturb the tests beside it.
source "$(dirname "$0")/lib.sh"
e2e_init restart
E2E_ROWS=4000
span_from=$(date -d '-30 days' +%F)
span_to=$(date -d '+12 days' +%F)
E2E_HISTORY_START=$span_from
fake_args=(--customers M1,M2 --from "$span_from" --to "$span_to")

start_own_cluster restart
schema_of() { schema=e2e_restart_${1}_$$; }
config_for() {
    write_config "$work/$1.yaml" "M1 M2" "${2:-}"
    sed -i 's/^  window: 7d/  window: 1d/' "$work/$1.yaml"
    sed -i 's/^  schema: .*/&\n  probe_interval: 1s/' "$work/$1.yaml"
}
complete_windows() { sql "SELECT count(*) FROM $schema.sync_windows WHERE status = 'complete'"; }

start_fake fake "${fake_args[@]}"

note "a clean run"
schema_of clean
config_for clean
run_cs clean backfill -c "$work/clean.yaml" --from "$span_from" --to "$span_to" || fail "clean backfill exited $?"
run_cs clean-run run --once -c "$work/clean.yaml" || fail "clean run --once exited $?"
table_rows "$schema" >"$work/clean.rows"
total=$(complete_windows)

# From here every request waits 40 ms at the server, so a first pass over the
# 86 small windows takes a second or two and the restart finds it mid-way:
# without it, run could finish every window between two looks at the ledger.
# (Much more would starve history: each cycle's fresh windows would take
# longer than the poll interval.)
curl -sf -X POST "$fake_url/_control/network?latency=40" >/dev/null || fail "the fake server took no latency"
# And one window of M2 answers only after 5 s (within request_timeout), so
# neither pass can have finished when the restart comes, however fast or slow
# the host: the restart follows the first complete windows by well under that.
hold_one_window() {
    curl -sf -X POST "$fake_url/_control/fault?count=1&customer=M2&spec=latency=5000" >/dev/null ||
        fail "the fake server took no fault"
}

note "a restart in the middle of a backfill"
schema_of backfill
config_for backfill
run_cs migrate migrate -c "$work/backfill.yaml" || fail "migrate failed"
hold_one_window
"$COMEBACK_SYNC" backfill -c "$work/backfill.yaml" --from "$span_from" --to "$span_to" \
    >"$work/backfill.log" 2>&1 &
backfill=$!
e2e_pids+=("$backfill")
wait_for 60 "some windows complete" "SELECT count(*) >= 4 FROM $schema.sync_windows WHERE status = 'complete'"
kill -0 "$backfill" 2>/dev/null || fail "the backfill ended before the restart"
restart_database
set +e; wait "$backfill"; code=$?; set -e
((code == 0)) || fail "the backfill exited $code after the restart (expected 0: the windows wait and retry)"
grep -q 'kind=database_lost' "$work/backfill.log" || fail "no window met the restart: nothing was tested"
grep -E 'window.failed.*kind=(transient|broken_response|timeout)' "$work/backfill.log" &&
    fail "the restart was counted as a Vitec failure"
run_cs backfill-run run --once -c "$work/backfill.yaml" || fail "run --once after the backfill exited $?"
table_rows "$schema" >"$work/backfill.rows"
expect_same "$work/clean.rows" "$work/backfill.rows" "after a restart mid-backfill the database equals the clean run's"

note "a restart in the middle of run"
schema_of run
port=$(free_port)
config_for run "metrics:
  listen: 127.0.0.1:$port"
hold_one_window
start_run run "$work/run.yaml"
daemon=$run_pid
wait_for 60 "some windows complete" "SELECT count(*) >= 4 FROM $schema.sync_windows WHERE status = 'complete'"
(($(complete_windows) < total)) || fail "run finished its windows before the restart"
restart_database
wait_for 120 "run completes every window after the restart" \
    "SELECT count(*) = $total FROM $schema.sync_windows WHERE status = 'complete'"
kill -0 "$daemon" 2>/dev/null || fail "run died in the restart"
for ((i = 0; i < 100; i++)); do
    health=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/healthz" || true)
    [[ $health == *' 200' ]] && break
    sleep 0.2
done
[[ $health == *' 200' ]] || fail "/healthz after the restart: $health"
kill -TERM "$daemon"
wait "$daemon" || fail "run exited $? on SIGTERM after the restart"
table_rows "$schema" >"$work/run.rows"
expect_same "$work/clean.rows" "$work/run.rows" "after a restart mid-run the database equals the clean run's"
faults=$(open_version_faults)
((faults == 0)) || fail "$faults comebacks have other than one open history version"
