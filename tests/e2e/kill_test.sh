#!/usr/bin/env bash
# SIGKILL of `backfill` and `run` at random moments, and while a window's
# staging or its COMMIT is under way (held by a proxy between the daemon and
# PostgreSQL),
# then a backfill and a run to the end: the database equals a clean run's, row by
# row, and every comeback has exactly one open history version. Then the same
# for windows of 30,000 rows, which stream into staging by COPY while their
# body arrives: SIGKILL while the server waits for a COPY's data, and while it
# has taken part of it.
source "$(dirname "$0")/lib.sh"
e2e_init kill
E2E_ROWS=3000
span_from=$(date -d '-20 days' +%F)
span_to=$(date -d '+12 days' +%F)
E2E_HISTORY_START=$span_from
fake_args=(--customers M1,M2 --from "$span_from" --to "$span_to")

clean_schema=${schema}_clean
killed_schema=$schema
big_clean_schema=${schema}_big_clean
big_killed_schema=${schema}_big
e2e_cleanup_more() {
    local s
    for s in "$clean_schema" "$big_clean_schema" "$big_killed_schema"; do
        psql -XqAt -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1
    done
}

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
# kill_while_held HOLD SECONDS PAUSE LOG COMMAND...: COMMAND in the background,
# output appended to LOG, while the proxy holds HOLD; SIGKILL PAUSE seconds
# after the hold is met (within SECONDS). True when the kill landed while held.
kill_while_held() {
    local hold=$1 seconds=$2 pause=$3 log=$4 before killed=1
    shift 4
    before=$(proxy_held_count)
    proxy_do "$hold"
    "$@" >>"$log" 2>&1 &
    victim=$!
    if proxy_wait_held "$seconds" "$before"; then
        sleep "$pause"
        kill -KILL "$victim" 2>/dev/null && killed=0
    fi
    wait "$victim" 2>/dev/null || true
    # The dead daemon's connections end; whatever was held is dropped.
    proxy_do reset
    proxy_do heal
    return $killed
}
# require_every_hold HOLDS COUNTS: fails unless each hold of the array HOLDS
# has a kill in the associative array COUNTS.
require_every_hold() {
    local -n each=$1 count=$2
    local hold
    for hold in "${each[@]}"; do
        ((${count[$hold]:-0} >= 1)) || fail "no kill while '$hold' was held: the daemon never sent it"
    done
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
           # --recheck compares every window: each one stages and commits.
           if kill_while_held "$hold" 30 0 "$work/killed-backfill.log" "$COMEBACK_SYNC" backfill \
               -c "$work/killed.yaml" --from "$span_from" --to "$span_to" --recheck; then
               kills=$((kills + 1)) held_kills=$((held_kills + 1)) held_by[$hold]=$((${held_by[$hold]:-0} + 1))
           fi ;;
    esac
done
echo "ok: $kills kills, $held_kills of them while a window's staging or COMMIT was held"
((kills >= 20)) || fail "only $kills kills hit a running process"
require_every_hold holds held_by

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

note "SIGKILL while a large window's rows are being copied into staging"
# 90,000 rows over three days in day windows: each window's formatted rows pass
# 4 MiB, so they stream into staging by COPY as the body arrives
# (etl/load/window_loader.cpp, hold_bytes); rows formatted earlier by the same
# load are then in the server's hands. `hold-after COPY load_comebacks` lets the
# COPY statement through and holds everything after: the server waits for data.
# `hold-after M3-U` holds after the first piece of data that names a user: the
# server has copied part of the window's rows.
stop_fake
E2E_ROWS=90000
big_from=$(date -d '-4 days' +%F)
big_to=$(date -d '-2 days' +%F)
big_args=(--customers M3 --from "$big_from" --to "$big_to")
start_fake fake-big "${big_args[@]}"
schema=$big_clean_schema
write_config "$work/big-clean.yaml" "M3"
day_windows "$work/big-clean.yaml"
run_cs big-clean backfill -c "$work/big-clean.yaml" --from "$big_from" --to "$big_to" ||
    fail "clean backfill of the large windows exited $?"
schema=$big_killed_schema
write_config "$work/big-killed.yaml" "M3"
day_windows "$work/big-killed.yaml"
sed -i "s/^  conninfo: \"\"/  conninfo: \"$proxy_conninfo\"/" "$work/big-killed.yaml"
run_cs big-migrate migrate -c "$work/big-killed.yaml" || fail "migrate of the large-window schema failed"
big_holds=("hold-after COPY load_comebacks" "hold-after M3-U")
declare -A big_held_by
for ((round = 0; round < 4; round++)); do
    hold=${big_holds[$((round % ${#big_holds[@]}))]}
    # The first round loads the windows for the first time; --recheck makes
    # the later ones compare (and so stage) every window again. The kill
    # waits a moment, so the server reads what was let through.
    extra=()
    ((round > 0)) && extra=(--recheck)
    if kill_while_held "$hold" 60 0.2 "$work/big-killed-backfill.log" "$COMEBACK_SYNC" backfill \
        -c "$work/big-killed.yaml" --from "$big_from" --to "$big_to" "${extra[@]}"; then
        big_held_by[$hold]=$((${big_held_by[$hold]:-0} + 1))
    fi
done
require_every_hold big_holds big_held_by
echo "ok: killed while a COPY waited for data ${big_held_by[${big_holds[0]}]} times, mid-data ${big_held_by[${big_holds[1]}]} times"
run_cs big-final backfill -c "$work/big-killed.yaml" --from "$big_from" --to "$big_to" ||
    fail "the last backfill of the large windows exited $?"
table_rows "$big_clean_schema" >"$work/big-clean.rows"
table_rows "$big_killed_schema" >"$work/big-killed.rows"
expect_same "$work/big-clean.rows" "$work/big-killed.rows" \
    "after kills mid-COPY the large windows equal a clean backfill's, row by row"
faults=$(open_version_faults)
((faults == 0)) || fail "$faults comebacks of the large windows have other than one open history version"
echo "ok: every comeback of the large windows has exactly one open history version"
