#!/usr/bin/env bash
# SIGTERM during a backfill leaves no partial window, and a rerun completes;
# SIGTERM while customers are planned stops the planning, and a customer not
# planned yet runs none of its windows.
source "$(dirname "$0")/lib.sh"
e2e_init sigterm
E2E_ROWS=20000

start_fake fake --customers M1,M2
write_config "$work/config.yaml" "M1 M2"
sed -i 's/^  window: 7d/  window: 1d/' "$work/config.yaml"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed"

"$COMEBACK_SYNC" backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" \
    >"$work/backfill1.log" 2>&1 &
backfill=$!
e2e_pids+=("$backfill")
wait_for 60 "some windows complete" \
    "SELECT count(*) >= 3 FROM $schema.sync_windows WHERE status = 'complete'"
kill -TERM "$backfill"
set +e; wait "$backfill"; code=$?; set -e
note "backfill exited $code after SIGTERM"
((code == 0 || code == 1)) || fail "backfill exited $code after SIGTERM (expected 0, or 1 for unfinished windows)"
complete=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE status = 'complete'")
total=$(( (366) * 2 ))
((complete < total)) || fail "the backfill finished before SIGTERM; nothing was interrupted"

# Every stored comeback lies in a complete window, and every complete window
# holds exactly the fake data of its range.
orphans=$(sql "SELECT count(*) FROM $schema.comebacks c WHERE NOT EXISTS (
    SELECT 1 FROM $schema.sync_windows w WHERE w.customer_id = c.customer_id AND w.status = 'complete'
      AND c.occurs_at >= w.window_from AND c.occurs_at < w.window_to)")
((orphans == 0)) || fail "$orphans comebacks lie outside every complete window: a partial window was committed"
dump_expected "$work/expected.csv" --customers M1,M2
sql "CREATE TABLE $schema.e2e_interrupted AS
     SELECT customer_id, window_from, window_to FROM $schema.sync_windows WHERE status = 'complete'" >/dev/null
in_interrupted="EXISTS (SELECT 1 FROM $schema.e2e_interrupted w WHERE w.customer_id = comeback_report.customer_id
    AND comeback_report.occurs_at >= w.window_from AND comeback_report.occurs_at < w.window_to)"
report_csv "$work/partial.csv" "$work/expected.csv.header" "$in_interrupted"
rows=$(wc -l <"$work/partial.csv")
((rows > 0)) || fail "no rows from the complete windows"
echo "ok: $complete of $total windows complete, $rows rows, none outside them"

note "rerun"
run_cs backfill2 backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" ||
    fail "the rerun exited $?"
report_csv "$work/actual.csv" "$work/expected.csv.header"
expect_same "$work/expected.csv" "$work/actual.csv" "the rerun completes the data set"
# The windows complete at SIGTERM already held all their rows: the rerun added none to them.
report_csv "$work/after.csv" "$work/expected.csv.header" "$in_interrupted"
expect_same "$work/after.csv" "$work/partial.csv" "windows complete at SIGTERM were whole"

note "SIGTERM while customers are planned: a customer not planned yet runs nothing"
# Two planners (database.pool_size: 2), both held on a ledger row of M1 and
# of M2; P3 waits for a planner.
sed -i "s/^  schema: .*/&\\n  pool_size: 2/" "$work/config.yaml"
echo "  - id: P3" >>"$work/config.yaml"  # last: planned after M1 and M2
hold_plans M1 M2
"$COMEBACK_SYNC" backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" >"$work/backfill3.log" 2>&1 &
backfill=$!
e2e_pids+=("$backfill")
wait_for 20 "both planners waiting on the held ledger rows" "SELECT ($(plans_waiting_sql)) = 2"
kill -TERM "$backfill"
sleep 0.5
let_plans_go
set +e; wait "$backfill"; code=$?; set -e
((code == 1)) || fail "backfill exited $code after SIGTERM while planning (expected 1: windows not run)"
[[ $(sql "SELECT count(*) FROM $schema.sync_windows WHERE customer_id = 'P3'") == 0 ]] ||
    fail "P3 was planned after SIGTERM"
# customer windows skipped done failed held not-run ...: P3 ran none of its windows.
p3=$(awk '$1 == "P3"' "$work/backfill3.log")
read -r _ p3_windows _ p3_done _ _ p3_not_run _ <<<"$p3"
((p3_windows > 0 && p3_done == 0 && p3_not_run == p3_windows)) ||
    fail "P3's summary line is '$p3', expected all of its windows not run"
echo "ok: SIGTERM while planning: exit 1, P3 not planned, its $p3_windows windows not run"
