#!/usr/bin/env bash
# Two `run` instances split the customers; when one is killed the other takes
# its customers over within a few poll intervals.
source "$(dirname "$0")/lib.sh"
e2e_init failover

start_fake fake --customers M1,M2,M3,M4
write_config "$work/config.yaml" "M1 M2 M3 M4"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed"
start_two_instances failover "$work/config.yaml"

wait_for 60 "all four customers have complete windows" \
    "SELECT count(DISTINCT customer_id) = 4 FROM $schema.sync_windows WHERE status = 'complete'"
split_ok=false
for ((i = 0; i < 50; i++)); do
    la=$(leases_of a) lb=$(leases_of b)
    if ((la > 0 && lb > 0 && la + lb >= 4)); then split_ok=true; break; fi
    sleep 0.2
done
$split_ok || fail "customers are not split: instance a holds $la leases, b holds $lb"
echo "ok: a holds $la customers, b holds $lb"

kill -KILL "$a"
wait "$a" 2>/dev/null || true
killed_at=$(sql "SELECT now()")
wait_for 30 "instance b holds all four customers" "SELECT $(leases_sql b) >= 4"
wait_for 30 "every customer fetched again after the kill" \
    "SELECT count(DISTINCT customer_id) = 4 FROM $schema.sync_windows WHERE fetched_at > '$killed_at'"
kill -0 "$b" || fail "instance b died"
echo "ok: b took over every customer"
