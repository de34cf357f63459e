#!/usr/bin/env bash
# A backfill yields exactly the fake data set in comeback_report; a second,
# forced backfill changes nothing; generation 2 of the data set (state changes,
# reschedules, deletions, renames) is reflected, with history; database.pool_size
# bounds the connections with more requests in flight than it; a customer with
# request slots to spare has two windows in flight, one loading while the next
# is fetched, and one without has one; a re-run of unchanged windows opens no
# more database connections than its short calls keep busy; a database on this
# machine with database.pool_size left out gets a pool of its cores at most;
# customers are planned in their order, none held back by a planner that waits
# for its connection.
source "$(dirname "$0")/lib.sh"
e2e_init backfill

start_fake fake --customers M1,M2,M3
write_config "$work/config.yaml" "M1 M2 M3"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed"

note "backfill"
run_cs backfill1 backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" ||
    fail "backfill exited $?"
# The backfill remembers the contacts its loads stored: a contact named by
# several windows is looked up by the first only (once more if its name
# turns up only later). Without the memo each window looks up each of its
# contacts. The server counts the lookups once the backfill's sessions end;
# read before any other query can scan the index (comeback_report does).
lookups_sql="SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes
             WHERE schemaname = '$schema' AND indexrelname = 'contacts_pkey'"
lookups=-1
for ((i = 0; i < 50; i++)); do  # until it has held still for a second
    sleep 0.2
    read_now=$(sql "$lookups_sql")
    if ((read_now == lookups && read_now > 0)); then
        ((++still == 5)) && break
    else
        still=0 lookups=$read_now
    fi
done
pairs=$(sql "SELECT count(DISTINCT (w.window_from, c.customer_id, c.contact_id))
             FROM $schema.comebacks c JOIN $schema.sync_windows w
               ON w.customer_id = c.customer_id AND c.occurs_at >= w.window_from AND c.occurs_at < w.window_to
             WHERE c.contact_id IS NOT NULL")
contacts=$(sql "SELECT count(*) FROM $schema.contacts")
((pairs > 2 * contacts)) || fail "the data set names too few contacts again ($contacts contacts in $pairs window pairs)"
((lookups > 0 && lookups * 2 <= pairs)) ||
    fail "the backfill looked contacts up $lookups times for $contacts contacts named $pairs times by windows"
echo "ok: $lookups contact lookups for $contacts contacts named $pairs times by windows"
dump_expected "$work/expected0.csv" --customers M1,M2,M3
report_csv "$work/actual0.csv" "$work/expected0.csv.header"
expect_same "$work/expected0.csv" "$work/actual0.csv" "comeback_report equals the fake data set"
# The database runs on this machine and database.pool_size is left out: the
# backfill opens at most as many connections as the machine has cores (at
# least 2), within the default of max_concurrent_requests + 2.
pool=$(grep -o 'backfill.started.*database_pool=[0-9]*' "$work/backfill1.log" | grep -o '[0-9]*$')
cores=$(getconf _NPROCESSORS_ONLN)
expected_pool=$((cores < 2 ? 2 : cores > 6 ? 6 : cores))
[[ $pool == "$expected_pool" ]] ||
    fail "backfill.started says database_pool=${pool:-(none)}; expected $expected_pool on $cores cores"
echo "ok: a pool of $pool for a database on this machine's $cores cores"

note "a forced second backfill changes nothing"
before=$(db_digest)
run_cs backfill2 backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" --force ||
    fail "second backfill exited $?"
[[ "$(db_digest)" == "$before" ]] || fail "the second backfill changed comebacks or history"
confirmed=$(grep -c 'window.loaded.*confirmed=true' "$work/backfill2.log" || true)
((confirmed > 0)) || fail "no window of the unchanged re-fetch was confirmed by its digest"
echo "ok: nothing changed; $confirmed windows confirmed without comparing rows"
# Confirmations are short calls: the connection of the migration check serves
# them, and the pool opens another only for calls that keep it busy (one
# opened per call at once, and one for the first probe, before).
connections=$(grep -o 'backfill.finished.*database_connections=[0-9]*' "$work/backfill2.log" | grep -o '[0-9]*$')
[[ -n $connections ]] || fail "backfill.finished did not say how many database connections it opened"
((connections <= 2)) || fail "the forced re-run opened $connections database connections, expected 2 at most"
echo "ok: the re-run opened $connections database connection(s)"
# How much database work there was and how long it waited for a session of the pool.
grep -q 'backfill.finished.*database_sessions=[1-9][0-9]* database_wait_s=[0-9.e-]* ' "$work/backfill2.log" ||
    fail "backfill.finished did not say how many database sessions it used and how long they waited: $(grep backfill.finished "$work/backfill2.log")"

note "--force keeps a row deleted by hand; --recheck restores it"
victim=$(sql "SELECT comeback_id FROM $schema.comebacks WHERE customer_id = 'M1' ORDER BY comeback_id LIMIT 1")
sql "DELETE FROM $schema.comebacks WHERE customer_id = 'M1' AND comeback_id = '$victim'" >/dev/null
run_cs backfill2b backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" --force ||
    fail "forced backfill after the delete exited $?"
[[ $(sql "SELECT count(*) FROM $schema.comebacks WHERE comeback_id = '$victim'") == 0 ]] ||
    fail "--force compared rows although every window was unchanged"
run_cs backfill2c backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" --recheck ||
    fail "backfill --recheck exited $?"
[[ $(sql "SELECT count(*) FROM $schema.comebacks WHERE comeback_id = '$victim'") == 1 ]] ||
    fail "--recheck did not restore the row deleted by hand"
echo "ok: $victim restored by --recheck"

note "generation 2"
stop_fake
start_fake fake2 --customers M1,M2,M3 --generation 2
write_config "$work/config.yaml" "M1 M2 M3"
history_before=$(sql "SELECT count(*) FROM $schema.comeback_history")
run_cs backfill3 backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" --force ||
    fail "generation 2 backfill exited $?"
dump_expected "$work/expected2.csv" --customers M1,M2,M3 --generation 2
report_csv "$work/actual2.csv" "$work/expected2.csv.header"
cmp -s "$work/expected0.csv" "$work/expected2.csv" && fail "generation 2 of the fake data equals generation 0"
expect_same "$work/expected2.csv" "$work/actual2.csv" "comeback_report equals generation 2"
deleted=$(sql "SELECT count(*) FROM $schema.comebacks WHERE deleted_at IS NOT NULL")
history_after=$(sql "SELECT count(*) FROM $schema.comeback_history")
((deleted > 0)) || fail "rows gone from generation 2 are not soft-deleted"
((history_after > history_before)) || fail "no history rows for generation 2's changes"
open_twice=$(sql "SELECT count(*) FROM (SELECT 1 FROM $schema.comeback_history WHERE valid_to IS NULL
                  GROUP BY customer_id, comeback_id HAVING count(*) > 1) t")
((open_twice == 0)) || fail "$open_twice comebacks have more than one open history version"
closed=$(sql "SELECT count(*) FROM $schema.comeback_history WHERE valid_to IS NOT NULL")
((closed > 0)) || fail "no earlier versions were closed in the history"
echo "ok: $deleted soft-deleted, $((history_after - history_before)) history rows added, $closed closed"

note "database.pool_size bounds the database connections, not max_concurrent_requests"
stop_fake
pool_customers=M1,M2,M3,M4,M5,M6,M7,M8
start_fake fake3 --customers "$pool_customers" --generation 2 --latency 100
write_config "$work/config.yaml" "${pool_customers//,/ }"
sed -i -e 's/max_concurrent_requests: 4/max_concurrent_requests: 8/' \
    -e "s/^  schema: .*/&\\n  pool_size: 2/" "$work/config.yaml"
pool_app="e2e-pool-$$"
PGAPPNAME=$pool_app "$COMEBACK_SYNC" backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" \
    >"$work/backfill4.log" 2>&1 &
pool_pid=$!
most=0
while kill -0 "$pool_pid" 2>/dev/null; do
    now=$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$pool_app'")
    ((now > most)) && most=$now
    sleep 0.02
done
wait "$pool_pid" || fail "backfill with database.pool_size: 2 exited $?: $(tail -n 5 "$work/backfill4.log")"
# The pool's two, and the database probe's one (docs/operations.md).
((most >= 1 && most <= 3)) || fail "backfill held $most connections at once with database.pool_size: 2"
grep -q 'backfill.started.*database_pool=2' "$work/backfill4.log" ||
    fail "backfill.started does not say database_pool=2 for database.pool_size: 2"
dump_expected "$work/expected4.csv" --customers "$pool_customers" --generation 2
report_csv "$work/actual4.csv" "$work/expected4.csv.header"
expect_same "$work/expected4.csv" "$work/actual4.csv" "comeback_report equals the data set after a backfill through 2 connections"
echo "ok: at most $most connections with 8 requests in flight"

note "with slots to spare, a customer's next window is fetched while the one before it loads, never more than two"
stop_fake
start_fake fake4 --customers M9 --latency 300
write_config "$work/config.yaml" "M9"
run_cs backfill5 backfill -c "$work/config.yaml" --from "$E2E_FROM" --to 2024-02-29 ||
    fail "backfill of one customer exited $?"
peak=$(curl -sf "$fake_url/_control/stats" | sed -n 's/.*"peak_in_flight":\([0-9]*\).*/\1/p')
requests=$(curl -sf "$fake_url/_control/stats" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
((requests >= 8)) || fail "the backfill of M9 sent $requests requests; expected one a week"
[[ $peak == 2 ]] || fail "one customer's backfill had $peak requests in flight at most; expected 2"
echo "ok: $requests requests, at most $peak in flight for one customer"

note "with as many customers as slots, each keeps one window in flight"
stop_fake
start_fake fake5 --customers M1,M2,M3,M4 --latency 200
write_config "$work/config.yaml" "M1 M2 M3 M4"
run_cs backfill6 backfill -c "$work/config.yaml" --from "$E2E_FROM" --to 2024-02-29 --force ||
    fail "backfill of four customers with four request slots exited $?"
stats=$(curl -sf "$fake_url/_control/stats")
per_customer=$(sed -n 's/.*"peak_in_flight_by_path":{\([^}]*\)}.*/\1/p' <<<"$stats")
[[ $per_customer == *Comeback* ]] || fail "the fake server reported no requests by path: $stats"
[[ $per_customer != *:[2-9]* ]] ||
    fail "a customer had more than one window in flight with no request slot to spare: $per_customer"
echo "ok: one window in flight a customer ($per_customer)"

note "customers are planned side by side and start as their plans are read: one whose plan waits on a lock does not hold up the others"
stop_fake
start_fake fake6 --customers M1,P2,P3
write_config "$work/config.yaml" "M1 P2 P3"
# M1's ledger has rows from the runs above: its plan can be held.
hold_plans M1
"$COMEBACK_SYNC" backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" >"$work/backfill7.log" 2>&1 &
planned_pid=$!
wait_for 20 "P2 and P3 planned and loaded while M1's plan waits" \
    "SELECT count(DISTINCT customer_id) = 2 AND bool_and(status = 'complete')
     FROM $schema.sync_windows WHERE customer_id IN ('P2', 'P3')"
(($(sql "$(plans_waiting_sql)") >= 1)) || fail "M1's plan is not waiting on the held ledger row"
let_plans_go
wait "$planned_pid" || fail "the backfill exited $? after M1's plan was let go: $(tail -n 5 "$work/backfill7.log")"
grep -q 'backfill.planning customers=3 ' "$work/backfill7.log" || fail "no backfill.planning line"
[[ $(sql "SELECT count(*) FROM $schema.sync_windows WHERE customer_id IN ('M1', 'P2', 'P3') AND status <> 'complete'") == 0 ]] ||
    fail "windows of M1, P2 or P3 are not complete"
grep -q 'backfill.started customers=3 ' "$work/backfill7.log" || fail "no backfill.started line once all were planned"
echo "ok: P2 and P3 planned and loaded while M1's plan waited; every window complete once it went on"

note "a plan that fails ends the backfill with its error: no further window starts"
stop_fake
start_fake fake7 --customers M1,P2,P3 --latency 200
write_config "$work/config.yaml" "M1 P2 P3"
sed -i 's/^  schema: .*/&\n  lock_timeout: 1s/' "$work/config.yaml"
hold_plans M1
started_at=$(sql "SELECT now()")
set +e
timeout 60 "$COMEBACK_SYNC" backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" --force \
    >"$work/backfill8.log" 2>&1; code=$?
set -e
let_plans_go
((code == 1)) || fail "a backfill whose plan of M1 failed exited $code (expected 1): $(tail -n 5 "$work/backfill8.log")"
grep -q 'lock timeout' "$work/backfill8.log" || fail "the backfill does not name the failed plan's error: $(tail -n 5 "$work/backfill8.log")"
# P2 and P3 were planned and started while M1's plan waited; at 200 ms a
# request their windows take seconds, so once the plan failed most of them
# never started.
attempted=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE customer_id IN ('P2', 'P3')
                 AND attempted_at >= '$started_at'")
planned=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE customer_id IN ('P2', 'P3')")
((attempted > 0)) || fail "no window of P2 or P3 started while M1's plan waited"
((attempted < planned)) || fail "all $planned windows of P2 and P3 ran after M1's plan failed"
run_cs backfill9 backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" ||
    fail "the rerun after a failed plan exited $?"
[[ $(sql "SELECT count(*) FROM $schema.sync_windows WHERE customer_id IN ('M1', 'P2', 'P3') AND status <> 'complete'") == 0 ]] ||
    fail "windows of M1, P2 or P3 are not complete after the rerun"
echo "ok: the failed plan ended the backfill ($attempted of $planned windows of P2 and P3 had started); the rerun completed"

note "a planner waiting for the pool's next connection claims no customer: customers are planned in their order"
stop_fake
order_customers="Q1 Q2 Q3 Q4 Q5 Q6 Q7 Q8"
start_fake fake8 --customers "${order_customers// /,}"
write_config "$work/config.yaml" "$order_customers" "log:
  level: debug"
run_cs backfill10 backfill -c "$work/config.yaml" --from "$E2E_FROM" --to 2024-02-29 ||
    fail "backfill of eight customers exited $?"
# Every planner but the first waits for a connection while the first plans on
# the migration check's; one that took its customer before its connection
# left that customer to the very end of planning. Each customer's first
# request follows its plan.
first_fetches=$(grep -o 'vitec_fetch_done customer=Q[0-9]' "$work/backfill10.log" | sed 's/.*=//' | awk '!seen[$0]++' | tr '\n' ' ')
[[ $first_fetches == *Q2*Q5* ]] ||
    fail "Q2, second in line, was first fetched after Q5: first fetches in order $first_fetches"
echo "ok: customers fetched first in the order they were planned: $first_fetches"
