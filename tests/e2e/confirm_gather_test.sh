#!/usr/bin/env bash
# `run` gathers the confirmations of unchanged windows that it re-fetches one
# after another: a window that finds the confirmer idle waits briefly for
# others (sync/confirmer.hpp, confirm_gather in commands/run.cpp), so a fleet's
# steady re-fetching costs a statement for several windows, not one each.
# One request at a time with 4 ms of latency spaces the responses about 5 ms
# apart, longer than a confirmation's statement takes here: without the
# gather nearly every window would be confirmed by a statement of its own. Each
# statement is its own transaction, so the ledger rows it confirmed share one
# xmin. The confirmed windows' data stays as the first cycle left it.
source "$(dirname "$0")/lib.sh"
e2e_init gather

start_fake fake --customers M1,M2,M3,M4 --latency 4 --from "$(date -d '-28 days' +%F)" --to "$(date -d '+28 days' +%F)"
write_config "$work/config.yaml" "M1 M2 M3 M4"
sed -i 's/^  max_concurrent_requests: 4/  max_concurrent_requests: 1/' "$work/config.yaml"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed"

note "the first cycle loads every window"
run_cs first run --once -c "$work/config.yaml" || fail "the first run --once exited $?"
windows=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE status = 'complete' AND response_digest IS NOT NULL")
((windows >= 16)) || fail "the first cycle completed $windows windows with a response digest"
table_rows "$schema" >"$work/first.rows"

note "the second cycle confirms them, several a statement"
# Fresh windows are due again poll_interval (2 s) after their last fetch.
wait_for 10 "the first cycle's windows due again" \
    "SELECT max(fetched_at) < now() - interval '2.1 seconds' FROM $schema.sync_windows"
run_cs again run --once -c "$work/config.yaml" || fail "the second run --once exited $?"
# A cycle re-fetches the fresh windows, not the history behind them.
refetched=$(grep -c 'window.loaded' "$work/again.log" || true)
logged=$(grep -c 'window.loaded.*confirmed=true unparsed=true' "$work/again.log" || true)
((refetched >= 12 && logged == refetched)) ||
    fail "the second cycle confirmed $logged of the $refetched windows it re-fetched from their digests"
read -r confirmed statements < <(sql "SELECT count(*), count(DISTINCT xmin::text) FROM $schema.sync_windows
                                      WHERE status = 'complete' AND compared_at < fetched_at" | tr '|' ' ')
((confirmed == refetched)) || fail "the ledger shows $confirmed windows confirmed, the log $refetched"
# About four windows a statement here (one a customer); one each without the gather.
((statements * 2 <= confirmed)) ||
    fail "the second cycle confirmed $confirmed windows in $statements statements: their confirmations were not gathered"
table_rows "$schema" >"$work/again.rows"
cmp -s "$work/first.rows" "$work/again.rows" || fail "confirming the windows changed the tables"
echo "ok: $confirmed windows confirmed in $statements statements"
