#!/usr/bin/env bash
# A proxy between the daemon and PostgreSQL swallows traffic like a network
# partition. migrate and backfill fail with a clear message and exit 1 instead
# of hanging; run's /healthz turns 503 within the documented bound (probe
# interval + 2 x connect_timeout) while idle and while a COMMIT is held,
# nothing partial is committed, and after the proxy heals the daemon catches
# up by itself: 200 again and the fake data set in the database.
source "$(dirname "$0")/lib.sh"
e2e_init partition
span_from=$(date -d '-20 days' +%F)
E2E_HISTORY_START=$span_from
fake_args=(--customers M1,M2 --from "$span_from" --to "$(date -d '+12 days' +%F)")

start_fake fake "${fake_args[@]}"
start_proxy proxy
port=$(free_port)
write_config "$work/config.yaml" "M1 M2" "metrics:
  listen: 127.0.0.1:$port"
sed -i "s/^  conninfo: \"\"/  conninfo: \"$proxy_conninfo\"/" "$work/config.yaml"
sed -i 's/^  schema: .*/&\n  connect_timeout: 2s\n  statement_timeout: 10s\n  probe_interval: 1s/' "$work/config.yaml"
# Every window is fresh and re-fetched each poll interval, so the whole data
# set follows the change of generation below.
sed -i 's/^  lookback: .*/  lookback: 28d/; s/^  shutdown_grace: .*/&\n  freshness:\n    - within: 60d\n      every: 2s/' \
    "$work/config.yaml"
# probe_interval + 2 x connect_timeout, and the scrape's own second.
bound=6

note "migrate and backfill against a database that never answers"
proxy_do blackhole
set +e
timeout 60 "$COMEBACK_SYNC" migrate -c "$work/config.yaml" >"$work/migrate.log" 2>&1; code=$?
set -e
((code == 1)) || fail "migrate exited $code against a silent database (expected 1; 124 is a hang)"
grep -q 'PostgreSQL is unreachable' "$work/migrate.log" || fail "migrate did not say the database failed"
set +e
timeout 60 "$COMEBACK_SYNC" backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO" \
    >"$work/backfill.log" 2>&1; code=$?
set -e
((code == 1)) || fail "backfill exited $code against a silent database (expected 1; 124 is a hang)"
grep -q 'PostgreSQL is unreachable' "$work/backfill.log" || fail "backfill did not say the database failed"
set +e
timeout 60 "$COMEBACK_SYNC" status -c "$work/config.yaml" --json >"$work/status.json" 2>"$work/status.log"; code=$?
set -e
((code == 1)) || fail "status exited $code against a silent database (expected 1; 124 is a hang)"
grep -q '"reachable":false' "$work/status.json" || fail "status --json does not say the database is unreachable: $(cat "$work/status.json")"
echo "ok: migrate, backfill and status exit 1 saying PostgreSQL is unreachable"
proxy_do heal

healthz() { curl -s -w ' %{http_code}' "http://127.0.0.1:$port/healthz" 2>/dev/null || true; }
# await_health CODE SECONDS: until /healthz answers CODE; sets health.
await_health() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        health=$(healthz)
        [[ $health == *" $1" ]] && return 0
        sleep 0.1
    done
    return 1
}
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v n="comeback_sync_$1" '$1 == n { print $2 }'; }

note "run, partitioned while idle"
start_run run "$work/config.yaml"
daemon=$run_pid
wait_for 60 "windows of both customers complete" \
    "SELECT count(DISTINCT customer_id) = 2 FROM $schema.sync_windows WHERE status = 'complete'"
await_health 200 30 || fail "/healthz before the partition: $health"
[[ $(metric database_up) == 1 ]] || fail "database_up is not 1 before the partition"
proxy_do blackhole
await_health 503 "$bound" || fail "/healthz still answers '$health' ${bound}s into the partition"
[[ $health == *database* ]] || fail "/healthz does not name the database: $health"
[[ $(metric database_up) == 0 ]] || fail "database_up is not 0 in the partition"
echo "ok: /healthz: $health"
proxy_do heal
await_health 200 30 || fail "/healthz after the partition healed: $health"
[[ $(metric database_up) == 1 ]] || fail "database_up is not 1 after the partition"
grep -q 'database.unreachable' "$work/run.log" || fail "no database.unreachable line was logged"
grep -q 'database.recovered' "$work/run.log" || fail "no database.recovered line was logged"

note "run, partitioned in the middle of a commit"
# An unchanged window is confirmed by a statement that is its own transaction,
# with no COMMIT: the next generation of the data gives the re-fetches changes
# to load, each in a transaction that ends with one.
curl -fsS -X POST "$fake_url/_control/generation?value=1" >/dev/null || fail "could not move the fake data to generation 1"
before=$(proxy_held_count)
proxy_do "hold-before COMMIT"
# Recent windows are fetched again every poll interval: one commits soon.
proxy_wait_held 60 "$before" || fail "no COMMIT went through the proxy"
await_health 503 "$bound" || fail "/healthz still answers '$health' ${bound}s into a partition mid-commit"
# Nothing partial: every stored comeback lies in a window that had a complete
# load (fetched_at). Not status = 'complete': a window whose attempt failed in
# the partition above may have its failure recorded as the database comes
# back (status 'failed'), keeping its last load's rows until a re-fetch
# completes, and the hold may come before that re-fetch.
orphans=$(sql "SELECT count(*) FROM $schema.comebacks c WHERE NOT EXISTS (
    SELECT 1 FROM $schema.sync_windows w WHERE w.customer_id = c.customer_id AND w.fetched_at IS NOT NULL
      AND c.occurs_at >= w.window_from AND c.occurs_at < w.window_to)")
((orphans == 0)) || fail "$orphans comebacks lie outside every loaded window: a partial window was committed;
windows: $(sql "SELECT customer_id, first_day, status, fetched_at, last_error_kind FROM $schema.sync_windows ORDER BY 1, 2")"
proxy_do heal
await_health 200 30 || fail "/healthz after the partition mid-commit healed: $health"
kill -0 "$daemon" 2>/dev/null || fail "run died in the partition"
dump_expected "$work/expected.csv" "${fake_args[@]}" --generation 1
wait_for 120 "every window complete again" \
    "SELECT bool_and(status = 'complete') FROM $schema.sync_windows"
# Windows loaded before generation 1 are re-fetched within a poll interval or two.
for ((i = 0; i < 60; i++)); do
    report_csv "$work/actual.csv" "$work/expected.csv.header"
    cmp -s "$work/expected.csv" "$work/actual.csv" && break
    sleep 1
done
kill -TERM "$daemon"
wait "$daemon" || fail "run exited $? on SIGTERM"
report_csv "$work/actual.csv" "$work/expected.csv.header"
expect_same "$work/expected.csv" "$work/actual.csv" "after both partitions the database holds the fake data set"
faults=$(open_version_faults)
((faults == 0)) || fail "$faults comebacks have other than one open history version"
