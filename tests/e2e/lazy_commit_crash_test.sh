#!/usr/bin/env bash
# What commits asynchronously, and what that may cost. PostgreSQL runs with
# production durability; the server processes that write WAL on their own
# (WAL writer, background writer, checkpointer, autovacuum launcher) are
# stopped (SIGSTOP), so no lazy commit leaves the server's WAL buffers unless
# a later durable commit writes them out; then they are killed, which makes
# the server crash and recover from what was written.
# 1. A window confirmed from its response digest commits lazily. Writers
#    stopped during a `backfill --force` that confirms every window: the crash
#    loses the last confirmations, and nothing else: the tables equal the
#    first load's row by row, every window is still complete, a window whose
#    confirmation was lost is exactly as the first load left it, and the next
#    `backfill --force` confirms every window again and exits 0.
# 2. `run` loads its windows lazily, and makes them durable when it stops:
#    writers stopped during a run's first cycle, then SIGTERM, then the crash:
#    nothing is lost. The same first cycle with the crash under the running
#    daemon instead: the crash loses its loads, ledger rows with them, and the
#    daemon loads them again, to the first run's tables row by row.
source "$(dirname "$0")/lib.sh"
e2e_init lazycommit
E2E_ROWS=2000
span_from=$(date -d '-40 days' +%F)
span_to=$(date -d '+10 days' +%F)
E2E_HISTORY_START=$span_from
fake_args=(--customers M1,M2 --from "$span_from" --to "$span_to")

start_own_cluster lazycommit production
# Stops the processes that write WAL out of a commit's way (the background
# writer and the checkpointer flush it before they write a data page).
stop_writers() {
    writers=$(sql "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
                   WHERE backend_type IN ('walwriter', 'background writer', 'checkpointer', 'autovacuum launcher')")
    walwriter=$(sql "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
    [[ $writers == *' '* && -n $walwriter ]] || fail "no WAL writer and background writer found: '$writers'"
    kill -STOP $writers
}
# Kills them: the postmaster ends every other server process, recovers from
# the WAL and starts a new WAL writer.
crash() {
    kill -KILL $writers
    local i new_walwriter
    for ((i = 0; i < 300; i++)); do
        new_walwriter=$(psql -XqAt -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'" \
            2>/dev/null || true)
        [[ -n $new_walwriter && $new_walwriter != "$walwriter" ]] && return 0
        sleep 0.1
    done
    fail "the server did not come back within 30 s after its WAL writer was killed"
}
writers=
# Stopped writers would hold the cluster's shutdown.
e2e_cleanup_more() { [[ -z $writers ]] || kill -CONT $writers 2>/dev/null || true; pg_stop "$own"; }

start_fake fake "${fake_args[@]}"
write_config "$work/config.yaml" "M1 M2"
sed -i 's/^  window: 7d/  window: 2d/' "$work/config.yaml"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed"

note "the first load"
run_cs first backfill -c "$work/config.yaml" --from "$span_from" --to "$span_to" || fail "the first backfill exited $?"
table_rows "$schema" >"$work/first.rows"
windows=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE status = 'complete' AND response_digest IS NOT NULL")
((windows > 10)) || fail "the first backfill completed $windows windows with a response digest"
ledger="SELECT customer_id, first_day, status, attempts, fetched_at FROM $schema.sync_windows ORDER BY 1, 2"
sql "$ledger" >"$work/ledger.first"

note "every window confirmed unparsed, then the server crashes"
stop_writers
run_cs force backfill -c "$work/config.yaml" --from "$span_from" --to "$span_to" --force ||
    fail "backfill --force exited $?"
confirmed=$(grep -c 'window.loaded.*confirmed=true unparsed=true' "$work/force.log" || true)
((confirmed == windows)) || fail "backfill --force confirmed $confirmed of $windows windows from their response digest"
sql "$ledger" >"$work/ledger.force"
crash

table_rows "$schema" >"$work/after-crash.rows"
expect_same "$work/first.rows" "$work/after-crash.rows" "after the crash the tables equal the first load's"
sql "$ledger" >"$work/ledger.crash"
# Each window's ledger row is the first load's or the confirmation's, whole.
lost=0
while IFS= read -r row; do
    if grep -qxF -- "$row" "$work/ledger.force"; then continue; fi
    grep -qxF -- "$row" "$work/ledger.first" || fail "a window's ledger row is neither before nor after its confirmation: $row"
    lost=$((lost + 1))
done <"$work/ledger.crash"
note "the crash lost $lost of $windows confirmations"
((lost > 0)) || fail "the crash lost no confirmation: they were not committed lazily, or the test no longer crashes"
[[ $(sql "SELECT count(*) FROM $schema.sync_windows WHERE status <> 'complete'") == 0 ]] ||
    fail "a window is no longer complete after the crash"

note "the next run confirms every window again"
run_cs again backfill -c "$work/config.yaml" --from "$span_from" --to "$span_to" --force ||
    fail "backfill --force after the crash exited $?"
confirmed=$(grep -c 'window.loaded.*confirmed=true unparsed=true' "$work/again.log" || true)
((confirmed == windows)) || fail "after the crash $confirmed of $windows windows were confirmed unparsed"
table_rows "$schema" >"$work/again.rows"
expect_same "$work/first.rows" "$work/again.rows" "after the rerun the tables equal the first load's"
[[ $(open_version_faults) == 0 ]] || fail "a comeback has other than one open history version"

note "run: its loads commit lazily, and a stop makes them durable"
# run_config FILE SCHEMA: M1 and M2's fresh windows, nothing older, into
# SCHEMA; one cycle an hour, so nothing after the first cycle commits.
run_config() {
    local file=$1 keep_schema=$schema
    schema=$2
    E2E_HISTORY_START=$(date -d '-14 days' +%F)
    write_config "$file" "M1 M2"
    schema=$keep_schema
    sed -i 's/^  poll_interval: 2s/  poll_interval: 1h/' "$file"
}
# first_cycle NAME SCHEMA POLL: with the writers stopped, a run of
# run_config NAME.yaml polling every POLL, as $daemon, until every window of
# both customers is complete.
first_cycle() {
    run_config "$work/$1.yaml" "$2"
    sed -i "s/^  poll_interval: 1h/  poll_interval: $3/" "$work/$1.yaml"
    stop_writers
    "$COMEBACK_SYNC" run -c "$work/$1.yaml" >"$work/$1.log" 2>&1 &
    daemon=$!
    e2e_pids+=("$daemon")
    wait_for 60 "the run's first cycle into $2" \
        "SELECT count(DISTINCT customer_id) = 2 AND bool_and(status = 'complete') FROM $2.sync_windows"
}
stopped=${schema}_stopped
first_cycle stopped "$stopped" 1h
loaded=$(sql "SELECT count(*) FROM $stopped.comebacks")
((loaded > 0)) || fail "the run loaded no comebacks"
table_rows "$stopped" >"$work/stopped.rows"
kill -TERM "$daemon"
set +e; wait "$daemon"; code=$?; set -e
((code == 0)) || fail "run exited $code after SIGTERM, expected 0"
crash
table_rows "$stopped" >"$work/stopped-after-crash.rows"
expect_same "$work/stopped.rows" "$work/stopped-after-crash.rows" \
    "a crash after the run stopped lost none of its $loaded comebacks"

note "the server crashes under a running run: its loads are lost, and it loads them again"
crashed=${schema}_crashed
first_cycle crashed "$crashed" 2s
before=$(sql "SELECT count(*) FROM $crashed.sync_windows WHERE status = 'complete'")
# Paused, so its sessions end in the crash, not before it (a session that
# ends drops its staging tables in a commit of its own, which would write
# out every lazy commit before it), and so nothing is fetched again before
# the loss is counted.
kill -STOP "$daemon"
crash
after=$(sql "SELECT count(*) FROM $crashed.sync_windows WHERE status = 'complete'")
note "the crash lost $((before - after)) of $before complete windows"
((after < before)) || fail "the crash lost no load: the run's loads did not commit lazily, or the test no longer crashes"
kill -CONT "$daemon"
wait_for 60 "the run loading its lost windows again" \
    "SELECT count(*) = $before FROM $crashed.sync_windows WHERE status = 'complete'"
kill -TERM "$daemon"
set +e; wait "$daemon"; code=$?; set -e
((code == 0)) || fail "run exited $code after SIGTERM, expected 0"
table_rows "$crashed" >"$work/crashed.rows"
expect_same "$work/stopped.rows" "$work/crashed.rows" "after the crash the run's tables equal the first run's"

echo "PASS: $windows windows confirmed lazily; a crash lost $lost confirmations and no data; a run's loads durable at its stop, and those a crash lost under it loaded again"
