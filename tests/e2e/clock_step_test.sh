#!/usr/bin/env bash
# The database server's clock stepped back an hour between two loads
# (libfaketime preloaded into a cluster of the test's own): the second load,
# of changed data, still compares the changed windows row by row instead of
# confirming them by their digest, the database equals the new data, and every
# comeback keeps exactly one open history version.
source "$(dirname "$0")/lib.sh"
libfaketime=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[[ -f $libfaketime ]] || { echo "SKIP: no $libfaketime (Debian package faketime)"; exit 77; }
e2e_init clockstep
span_from=$(date -d '-20 days' +%F)
span_to=$(date -d '+10 days' +%F)
E2E_HISTORY_START=$span_from
fake_args=(--customers M1,M2 --from "$span_from" --to "$span_to")

start_own_cluster clockstep
server_lag() { sql "SELECT round(extract(epoch FROM clock_timestamp() - now()) + $(date +%s) - extract(epoch FROM now()))::int"; }

start_fake fake "${fake_args[@]}"
write_config "$work/config.yaml" "M1 M2"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed"

note "a load at the right time"
run_cs first backfill -c "$work/config.yaml" --from "$span_from" --to "$span_to" || fail "the first backfill exited $?"
windows=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE status = 'complete'")
((windows > 0)) || fail "the first backfill completed no window"
history_before=$(sql "SELECT count(*) FROM $schema.comeback_history")
sql "CREATE TABLE $schema.ledger_before AS
     SELECT customer_id, date_criteria, first_day, end_day, compared_at FROM $schema.sync_windows" >/dev/null

note "the server's clock one hour back"
# The cluster commits asynchronously (throwaway durability): a checkpoint puts
# the first load on disk before the immediate restart.
sql "CHECKPOINT" >/dev/null
restart_database LD_PRELOAD="$libfaketime" FAKETIME=-1h DONT_FAKE_MONOTONIC=1
lag=$(server_lag)
((lag >= 3500 && lag <= 3700)) || fail "the server's clock is $lag s behind, not an hour: libfaketime did not take"
last_compared=$(sql "SELECT max(compared_at) > now() FROM $schema.sync_windows")
[[ $last_compared == t ]] || fail "the first load's comparisons are not later than the server's clock now"
echo "ok: the server's clock is $lag s behind the first load's"

note "changed data loaded under the stepped-back clock"
stop_fake
start_fake fake2 "${fake_args[@]}" --generation 2
write_config "$work/config.yaml" "M1 M2"
dump_expected "$work/expected0.csv" "${fake_args[@]}"
dump_expected "$work/expected2.csv" "${fake_args[@]}" --generation 2
cmp -s "$work/expected0.csv" "$work/expected2.csv" && fail "generation 2 of the fake data equals generation 0"
# --force fetches every window again: unchanged ones may be confirmed by their
# digest, changed ones must be compared.
run_cs second backfill -c "$work/config.yaml" --from "$span_from" --to "$span_to" --force ||
    fail "the backfill under the stepped-back clock exited $?"
report_csv "$work/actual2.csv" "$work/expected2.csv.header"
expect_same "$work/expected2.csv" "$work/actual2.csv" "comeback_report equals the changed data"
compared=$(sql "SELECT count(*) FROM $schema.sync_windows w JOIN $schema.ledger_before b
                  USING (customer_id, date_criteria, first_day, end_day)
                WHERE w.status = 'complete' AND w.rows_changed > 0
                  AND w.compared_at IS DISTINCT FROM b.compared_at")
((compared > 0)) || fail "no window was compared row by row under the stepped-back clock"
echo "ok: $compared windows compared row by row, with changes, under the stepped-back clock"
history_after=$(sql "SELECT count(*) FROM $schema.comeback_history")
((history_after > history_before)) || fail "the changes left no history ($history_before rows before, $history_after after)"
closed=$(sql "SELECT count(*) FROM $schema.comeback_history WHERE valid_to IS NOT NULL")
((closed > 0)) || fail "no earlier version was closed in the history"
faults=$(open_version_faults)
((faults == 0)) || fail "$faults comebacks have other than one open history version"
echo "ok: $((history_after - history_before)) history rows for the change, one open version per comeback"
