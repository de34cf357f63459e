#!/usr/bin/env bash
# A chaos run (every first attempt at a URL fails in a different way) converges
# to the same database as a clean run.
source "$(dirname "$0")/lib.sh"
e2e_init chaos

clean_schema=${schema}_clean
trap 'psql -XqAt -c "DROP SCHEMA IF EXISTS $clean_schema CASCADE" >/dev/null 2>&1; e2e_cleanup' EXIT

start_fake clean --customers M1,M2
chaos_schema=$schema
schema=$clean_schema
write_config "$work/clean.yaml" "M1 M2"
run_cs clean-backfill backfill -c "$work/clean.yaml" --from "$E2E_FROM" --to "$E2E_TO" ||
    fail "clean backfill exited $?"
clean=$(db_digest)
stop_fake

schema=$chaos_schema
start_fake chaos --customers M1,M2 --chaos
write_config "$work/chaos.yaml" "M1 M2"
run_cs chaos-backfill backfill -c "$work/chaos.yaml" --from "$E2E_FROM" --to "$E2E_TO" ||
    fail "chaos backfill exited $? (retries should absorb one failure per URL)"
retried=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE attempts > 1")
((retried > 0)) || fail "no window needed a retry: the fake server's chaos mode did nothing"
[[ "$(db_digest)" == "$clean" ]] || fail "the chaos run's database differs from the clean run's"
dump_expected "$work/expected.csv" --customers M1,M2
report_csv "$work/actual.csv" "$work/expected.csv.header"
expect_same "$work/expected.csv" "$work/actual.csv" "chaos run equals the fake data set and the clean run ($retried windows retried)"
