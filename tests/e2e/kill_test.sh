#!/usr/bin/env bash
# SIGKILL of `backfill` and `run` at random moments, and while a window's
# staging or its COMMIT is under way (held by a proxy between the daemon and
# PostgreSQL),
# then a backfill and a run to the end: the database equals a clean run's, row by
# row, and every comeback has exactly one open history version.
source "$(dirname "$0")/lib.sh"
e2e_init kill
E2E_ROWS=3000
span_from=$(date -d '-20 days' +%F)
span_to=$(date -d '+12 days' +%F)
E2E_HISTORY_START=$span_from
fake_args=(--customers M1,M2 --from "$span_from" --to "$span_to")

clean_schema=${schema}_clean
killed_schema=$schema
e2e_cleanup_more() { psql -XqAt -c "DROP SCHEMA IF EXISTS $clean_schema CASCADE" >/dev/null 2>&1; }

start_fake fake "${fake_args[@]}"
day_windows() { sed -i 's/^  window: 7d/  window: 1d/' "$1"; }

note "a clean backfill"
schema=$clean_schema
write_config "$work/clean.yaml" "M1 M2"
day_windows "$work/clean.yaml"
run_cs clean backfill -c "$work/clean.yaml" --from "$span_from" --to "$span_to" || fail "clean backfill exited $?"
# run plans windows up to its horizon: the clean database has them too.
run_cs clean-run run --once -c "$work/clean.yaml" || fail "clean run --once exited $?"

schema=$killed_schema
start_proxy proxy
write_config "$work/killed.yaml" "M1 M2"
day_windows "$work/killed.yaml"
sed -i "s/^  conninfo: \"\"/  conninfo: \"$proxy_conninfo\"/" "$work/killed.yaml"
run_cs migrate migrate -c "$work/killed.yaml" || fail "migrate failed"

kills=0 held_kills=0
# kill_at_random PID MAX_TENTHS: SIGKILL after up to MAX_TENTHS tenths of a second.
kill_at_random() {
    local pid=$1 tenths=$((1 + RANDOM % $2))
    sleep "$((tenths / 10)).$((tenths % 10))"
    if kill -KILL "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null || true
}
start_backfill() {
    "$COMEBACK_SYNC" backfill -c "$work/killed.yaml" --from "$span_from" --to "$span_to" "$@" \
        >>"$work/killed-backfill.log" 2>&1 &
    victim=$!
}
# The test's day windows are small, so their rows reach staging in the
# statement that empties it (stage_rows), not by COPY. Each hold must be hit.
holds=("hold-after COMMIT" "hold-before COMMIT" "hold-after stage_rows" "hold-before stage_rows")
declare -A held_by

for ((round = 0; kills < 24 && round < 60; round++)); do
    case $((round % 4)) in
        0) start_backfill; kill_at_random "$victim" 15 ;;
        1) start_backfill --force; kill_at_random "$victim" 15 ;;
        2) "$COMEBACK_SYNC" run -c "$work/killed.yaml" >>"$work/killed-run.log" 2>&1 &
           victim=$!
           kill_at_random "$victim" 25 ;;
        3) hold=${holds[$(((round / 4) % ${#holds[@]}))]}
           before=$(proxy_held_count)
           proxy_do "$hold"
           # --recheck compares every window: each one stages and commits.
           start_backfill --recheck
           if proxy_wait_held 30 "$before"; then
               kill -KILL "$victim" 2>/dev/null &&
                   { kills=$((kills + 1)); held_kills=$((held_kills + 1)); held_by[$hold]=$((${held_by[$hold]:-0} + 1)); }
           fi
           wait "$victim" 2>/dev/null || true
           # The dead daemon's connections end; whatever was held is dropped.
           proxy_do reset
           proxy_do heal ;;
    esac
done
echo "ok: $kills kills, $held_kills of them while a window's staging or COMMIT was held"
((kills >= 20)) || fail "only $kills kills hit a running process"
for hold in "${holds[@]}"; do
    ((${held_by[$hold]:-0} >= 1)) || fail "no kill while '$hold' was held: the daemon never sent it"
done

note "a backfill and a run to the end"
run_cs final backfill -c "$work/killed.yaml" --from "$span_from" --to "$span_to" || fail "the last backfill exited $?"
run_cs final-run run --once -c "$work/killed.yaml" || fail "the last run --once exited $?"

table_rows "$clean_schema" >"$work/clean.rows"
table_rows "$killed_schema" >"$work/killed.rows"
expect_same "$work/clean.rows" "$work/killed.rows" "after $kills kills the database equals the clean run's, row by row"
dump_expected "$work/expected.csv" "${fake_args[@]}"
report_csv "$work/actual.csv" "$work/expected.csv.header"
expect_same "$work/expected.csv" "$work/actual.csv" "comeback_report equals the fake data set"
faults=$(open_version_faults)
((faults == 0)) || fail "$faults comebacks have other than one open history version"
echo "ok: every comeback has exactly one open history version"
