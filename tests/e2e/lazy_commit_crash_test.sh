#!/usr/bin/env bash
# A window confirmed from its response digest commits asynchronously. This
# proves what that may cost. PostgreSQL runs with production durability; the
# server processes that write WAL on their own (WAL writer, background writer,
# checkpointer, autovacuum launcher) are stopped (SIGSTOP) during a
# `backfill --force` that confirms every window, so no confirmation leaves the
# server's WAL buffers unless a later durable commit (a fetch ticket's) writes
# them out, and the last of each customer never does; then they are killed,
# which makes the server crash and recover from what was written. The crash loses the last
# confirmations, and nothing else: the tables equal the first load's row by
# row, every window is still complete, a window whose confirmation was lost
# is exactly as the first load left it, and the next `backfill --force`
# confirms every window again and exits 0.
source "$(dirname "$0")/lib.sh"
e2e_init lazycommit
E2E_ROWS=2000
span_from=$(date -d '-40 days' +%F)
span_to=$(date -d '+10 days' +%F)
E2E_HISTORY_START=$span_from
fake_args=(--customers M1,M2 --from "$span_from" --to "$span_to")

start_own_cluster lazycommit production
# The processes that write WAL out of a commit's way (the background writer
# and the checkpointer flush it before they write a data page).
writers=$(sql "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
               WHERE backend_type IN ('walwriter', 'background writer', 'checkpointer', 'autovacuum launcher')")
walwriter=$(sql "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
[[ $writers == *' '* && -n $walwriter ]] || fail "no WAL writer and background writer found: '$writers'"
# Stopped writers would hold the cluster's shutdown.
e2e_cleanup_more() { kill -CONT $writers 2>/dev/null || true; pg_stop "$own"; }

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
kill -STOP $writers
run_cs force backfill -c "$work/config.yaml" --from "$span_from" --to "$span_to" --force ||
    fail "backfill --force exited $?"
confirmed=$(grep -c 'window.loaded.*confirmed=true unparsed=true' "$work/force.log" || true)
((confirmed == windows)) || fail "backfill --force confirmed $confirmed of $windows windows from their response digest"
sql "$ledger" >"$work/ledger.force"
kill -KILL $writers
# The postmaster ends every other server process, recovers from the WAL and
# starts a new WAL writer.
for ((i = 0; i < 300; i++)); do
    new_walwriter=$(psql -XqAt -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'" \
        2>/dev/null || true)
    [[ -n $new_walwriter && $new_walwriter != "$walwriter" ]] && break
    sleep 0.1
done
((i < 300)) || fail "the server did not come back within 30 s after its WAL writer was killed"

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
echo "PASS: $windows windows confirmed lazily; a crash lost $lost confirmations and no data"
