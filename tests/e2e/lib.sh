# Shared by the end-to-end tests: the real comeback-sync binary, the real
# PostgreSQL from scripts/test (PG* variables) and the fake Vitec server.
# Each test works in its own schema and temporary directory, so tests run in
# parallel, and cleans up on every exit path.
#   COMEBACK_SYNC=path FAKE_VITEC=path bash tests/e2e/NAME_test.sh
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/ports.sh"

: "${COMEBACK_SYNC:?COMEBACK_SYNC must name the comeback-sync binary}"
: "${FAKE_VITEC:?FAKE_VITEC must name the fake-vitec binary}"
[[ -n "${PGHOST:-}" && -n "${PGPORT:-}" && -n "${PGDATABASE:-}" ]] ||
    fail "PGHOST, PGPORT and PGDATABASE are not set: run through scripts/test, or" \
         "source scripts/lib/postgres.sh && pg_start /tmp/pg first"

export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
E2E_SEED=11
E2E_ROWS=300
E2E_PASSWORD=e2e-right-password
E2E_FROM=2024-01-01
E2E_TO=2024-12-31

e2e_init() {
    e2e_name=$1
    work=$(mktemp -d "/tmp/comeback-e2e-$e2e_name.XXXXXX")
    schema="e2e_${e2e_name}_$$"
    e2e_pids=()
    trap e2e_cleanup EXIT
    export E2E_VITEC_PASSWORD=$E2E_PASSWORD
    sql "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null
}

e2e_cleanup() {
    local status=$?
    local pid
    for pid in "${e2e_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${e2e_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    # A test's own extra resources (a cluster of its own), if it defines this.
    if declare -F e2e_cleanup_more >/dev/null; then e2e_cleanup_more || true; fi
    if ((status != 0)); then
        for log in "$work"/*.log; do
            [[ -f $log ]] && { echo "=== $(basename "$log") (last 40 lines)"; tail -n 40 "$log"; } >&2
        done
    fi
    psql -XqAt -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}

sql() { psql -XqAt -v ON_ERROR_STOP=1 -c "$1"; }

free_port() { free_tcp_port || fail "no free port"; }

# memory_kib PID FIELD: a process's VmRSS (now) or VmHWM (peak) in KiB; empty
# once the process is gone.
memory_kib() { awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status" 2>/dev/null; }

# start_fake NAME [fake-vitec args...]: starts the fake server; sets fake_url.
start_fake() {
    local name=$1; shift
    rm -f "$work/$name.port"
    "$FAKE_VITEC" --port-file "$work/$name.port" --seed "$E2E_SEED" \
        --rows-per-customer "$E2E_ROWS" --default-password "$E2E_PASSWORD" "$@" \
        >"$work/$name.log" 2>&1 &
    fake_pid=$!
    e2e_pids+=("$fake_pid")
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s "$work/$name.port" ]] && break
        kill -0 "$fake_pid" 2>/dev/null || fail "fake-vitec exited: $(cat "$work/$name.log")"
        sleep 0.1
    done
    [[ -s "$work/$name.port" ]] || fail "fake-vitec wrote no port file"
    fake_url="http://127.0.0.1:$(cat "$work/$name.port")"
}

stop_fake() { kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; }

# write_config FILE "M1 M2 ..." [extra yaml appended]: a config for this test's
# schema and fake server. A customer written as ID:VAR takes its password from
# the environment variable VAR instead of vitec's default.
write_config() {
    local file=$1 customers=$2 extra=${3:-} c
    {
        cat <<YAML
database:
  conninfo: ""
  schema: $schema
vitec:
  base_url: $fake_url
  username: e2e
  password_env: E2E_VITEC_PASSWORD
  request_timeout: 10s
  max_concurrent_requests: 4
  max_requests_per_second: 1000
  retry:
    max_attempts: 6
    base_delay: 10ms
    max_delay: 200ms
    max_retry_after: 1s
    auth_backoff: 1h
sync:
  window: 7d
  lookback: 14d
  horizon: 14d
  poll_interval: 2s
  history_start: ${E2E_HISTORY_START:-$(date -d '-28 days' +%F)}
  shutdown_grace: 10s
customers:
YAML
        for c in $customers; do
            echo "  - id: ${c%%:*}"
            [[ $c == *:* ]] && echo "    password_env: ${c#*:}"
        done
        echo "$extra"
    } >"$file"
}

# run_cs LOG ARGS...: runs comeback-sync, output into LOG; returns its exit code.
run_cs() {
    local log=$1; shift
    "$COMEBACK_SYNC" "$@" >"$work/$log.log" 2>&1
}

# dump_expected FILE [fake-vitec args]: the fake data set as comeback_report CSV, sorted, no header.
dump_expected() {
    local file=$1; shift
    "$FAKE_VITEC" --dump --seed "$E2E_SEED" --rows-per-customer "$E2E_ROWS" "$@" >"$file.raw" ||
        fail "fake-vitec --dump failed"
    head -n 1 "$file.raw" >"$file.header"
    tail -n +2 "$file.raw" | LC_ALL=C sort >"$file"
}

# report_csv FILE HEADER_FILE [WHERE]: the live rows of comeback_report in the
# dump's columns and formats (text quoted, times UTC with microseconds), sorted.
report_csv() {
    local file=$1 header=$2 where=${3:-true} cols=() quoted=() c
    IFS=, read -r -a names <"$header"
    for c in "${names[@]}"; do
        if [[ $c == *_at ]]; then
            cols+=("to_char($c AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS $c")
        else
            cols+=("$c")
            quoted+=("$c")
        fi
    done
    local select force
    select=$(IFS=,; echo "${cols[*]}")
    force=$(IFS=,; echo "${quoted[*]}")
    psql -XqAt -v ON_ERROR_STOP=1 -c \
        "COPY (SELECT $select FROM $schema.comeback_report WHERE NOT is_deleted AND ($where))
         TO STDOUT WITH (FORMAT csv, FORCE_QUOTE ($force))" |
        LC_ALL=C sort >"$file"
}

# expect_same EXPECTED ACTUAL WHAT
expect_same() {
    if ! diff -q "$1" "$2" >/dev/null; then
        echo "expected $(wc -l <"$1") rows, got $(wc -l <"$2"); first differences:" >&2
        diff "$1" "$2" | head -n 20 >&2
        fail "$3"
    fi
    echo "ok: $3 ($(wc -l <"$1") rows)"
}

# A digest of what the sync stored, without the times it saw things.
db_digest() {
    local s=${1:-$schema}
    sql "SELECT md5(coalesce(string_agg(row(customer_id, comeback_id, contact_id, booked_by_user_id,
                assigned_user_id, assigned_group_id, assigned_office_id, state, origin, occurs_at,
                booked_at, deleted_at IS NOT NULL)::text, '|' ORDER BY customer_id, comeback_id), ''))
         || ':' || (SELECT count(*) FROM $s.comeback_history)
         FROM $s.comebacks"
}

# wait_for SECONDS DESCRIPTION SQL: polls until SQL returns t.
wait_for() {
    local seconds=$1 what=$2 query=$3 i
    for ((i = 0; i < seconds * 5; i++)); do
        [[ "$(sql "$query" 2>/dev/null || true)" == t ]] && return 0
        sleep 0.2
    done
    fail "timed out after ${seconds}s waiting for: $what"
}

# hold_plans CUSTOMER...: a transaction that deleted the first ledger row of
# each customer stays open (up to 60 s), so their plans (an insert of the same
# key) wait for it; returns once it holds. plans_waiting_sql is a query that
# counts the other sessions waiting on a lock; let_plans_go ends the transaction.
hold_plans() {
    local list
    list=$(printf "'%s'," "$@")
    plan_holder="e2e-plan-holder-$$"
    PGAPPNAME=$plan_holder psql -XqAt -v ON_ERROR_STOP=1 \
        -c "BEGIN" \
        -c "DELETE FROM $schema.sync_windows w WHERE w.customer_id IN (${list%,})
            AND w.first_day = (SELECT min(first_day) FROM $schema.sync_windows f WHERE f.customer_id = w.customer_id)" \
        -c "SELECT pg_sleep(60)" >"$work/plan_holder.log" 2>&1 &
    e2e_pids+=("$!")
    wait_for 20 "the transaction holding plans of $*" \
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$plan_holder' AND query LIKE '%pg_sleep%'"
}
plans_waiting_sql() {
    echo "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name <> '$plan_holder'"
}
let_plans_go() {
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$plan_holder'" >/dev/null
}

# fetch_until URL PATTERN [TRIES]: GETs URL every 0.2 s until its body matches
# the grep pattern, at most TRIES times (150); the last body is in $fetched.
# A GET that fails fails the test; none matching returns 1.
fetch_until() {
    local url=$1 pattern=$2 tries=${3:-150} i
    for ((i = 0; i < tries; i++)); do
        fetched=$(curl -fsS "$url") || fail "GET $url failed"
        grep -q -- "$pattern" <<<"$fetched" && return 0
        sleep 0.2
    done
    return 1
}

# start_run NAME CONFIG [env...]: comeback-sync run in the background; sets run_pid.
start_run() {
    local name=$1 config=$2; shift 2
    env "$@" "$COMEBACK_SYNC" run -c "$config" >"$work/$name.log" 2>&1 &
    run_pid=$!
    e2e_pids+=("$run_pid")
}

# Two `run` instances, a and b, on one configuration:
# start_two_instances NAME CONFIG sets a and b (their pids) and app, the
# prefix of their sessions' application_name ("$app-a", "$app-b").
start_two_instances() {
    app="e2e-$1-$$"
    start_run a "$2" PGAPPNAME="$app-a"
    a=$run_pid
    start_run b "$2" PGAPPNAME="$app-b"
    b=$run_pid
}

# The leases instance X (a or b) holds: the advisory locks its sessions hold
# (a loader's short transaction lock may add one). leases_sql X is the count
# as an SQL expression; leases_of X reads it.
leases_sql() {
    echo "(SELECT count(DISTINCT (l.classid, l.objid)) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND s.application_name = '$app-$1')"
}
leases_of() { sql "SELECT $(leases_sql "$1")"; }

# start_proxy NAME: db-proxy (tests/support/db_proxy_main.cpp) between the
# daemon and the test PostgreSQL on loopback TCP; sets proxy_conninfo for
# database.conninfo. proxy_do COMMAND sends it a command and waits for its
# answer; proxy_wait_held SECONDS waits until a hold-* pattern was met.
start_proxy() {
    local name=$1 i
    : "${DB_PROXY:?DB_PROXY must name the db-proxy binary}"
    proxy_log=$work/$name.log
    mkfifo "$work/$name.in"
    "$DB_PROXY" --upstream-port "$PGPORT" --port-file "$work/$name.port" \
        <"$work/$name.in" >"$proxy_log" 2>&1 &
    proxy_pid=$!
    e2e_pids+=("$proxy_pid")
    exec {proxy_fd}>"$work/$name.in"
    for ((i = 0; i < 100; i++)); do
        [[ -s "$work/$name.port" ]] && break
        sleep 0.1
    done
    [[ -s "$work/$name.port" ]] || fail "db-proxy wrote no port file: $(cat "$proxy_log")"
    proxy_conninfo="host=127.0.0.1 port=$(cat "$work/$name.port")"
    proxy_commands=0
}

proxy_do() {
    local i
    echo "$*" >&"$proxy_fd"
    proxy_commands=$((proxy_commands + 1))
    for ((i = 0; i < 100; i++)); do
        (($(grep -c '^ok ' "$proxy_log") >= proxy_commands)) && return 0
        sleep 0.05
    done
    fail "db-proxy did not take: $*"
}

proxy_held_count() { grep -c '^held ' "$proxy_log" || true; }

# proxy_wait_held SECONDS BEFORE: until more than BEFORE holds happened.
proxy_wait_held() {
    local seconds=$1 before=$2 i
    for ((i = 0; i < seconds * 10; i++)); do
        (($(proxy_held_count) > before)) && return 0
        sleep 0.1
    done
    return 1
}

# The rows of every table the sync writes, without the columns that hold the
# times it saw things: two schemas that list the same are the same database,
# row by row.
table_rows() {
    local s=$1 table cols
    for table in contacts users user_groups offices comebacks comeback_history sync_windows rejected_rows; do
        cols=$(sql "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
                    FROM information_schema.columns
                    WHERE table_schema = '$s' AND table_name = '$table'
                      AND column_name NOT LIKE '%\\_seen\\_at'
                      AND column_name NOT IN ('valid_from', 'valid_to', 'version_from', 'deleted_at', 'fetched_at',
                                              'attempted_at', 'changed_at', 'compared_at',
                                              'attempts', 'fetch_ms', 'load_ms', 'response_bytes',
                                              'fetch_ticket', 'times_seen', 'last_http_status',
                                              'last_error', 'last_error_kind', 'rows_changed')")
        psql -XqAt -v ON_ERROR_STOP=1 -c "COPY (SELECT '$table', $cols FROM $s.$table) TO STDOUT" |
            LC_ALL=C sort
    done
    sql "SELECT 'deleted', customer_id, comeback_id FROM $s.comebacks WHERE deleted_at IS NOT NULL
         ORDER BY 1, 2, 3"
}

# Comebacks of the schema with other than exactly one open history version.
open_version_faults() {
    sql "SELECT count(*) FROM $schema.comebacks c
         WHERE (SELECT count(*) FROM $schema.comeback_history h
                WHERE h.customer_id = c.customer_id AND h.comeback_id = c.comeback_id
                  AND h.valid_to IS NULL) <> 1"
}

# fixture_rows DAY FIRST COUNT: COUNT comeback elements K<n>, n from FIRST, each
# with its own contact C<n> ("Contact <n>"), due at 10:00 on DAY, comma-separated
# (wrap them in [ ] for a response). For --fixture responses.
fixture_rows() {
    local day=$1 first=$2 count=$3 n sep=""
    for ((n = first; n < first + count; n++)); do
        printf '%s{"id":"K%03d","contact":{"id":"C%03d","name":"Contact %03d"},' "$sep" "$n" "$n" "$n"
        printf '"bookedBy":{"id":"U1","name":"Bo Berg"},"state":"New","origin":"User",'
        printf '"occursAt":"%sT10:00:00","bookedDate":"2024-01-02T09:00:00"}' "$day"
        sep=","
    done
}

# A PostgreSQL cluster of the test's own, for tests that restart it:
# restarting the shared one would disturb the tests beside it.
# start_own_cluster NAME [DURABILITY] starts it (PG* now name it; DURABILITY
# as scripts/lib/postgres.sh's pg_start takes it) and stops it on exit.
start_own_cluster() {
    source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/postgres.sh"
    own=$(mktemp -d "/tmp/comeback-e2e-$1-pg.XXXXXX")
    e2e_cleanup_more() { pg_stop "$own"; }
    pg_start "$own" "${2:-}" >/dev/null
}

# restart_database [ENV...]: an immediate restart of the test's own cluster
# (pg_ctl restart -m immediate), its server processes started with ENV in
# their environment.
restart_database() {
    pg__as_owner env "$@" "$PG_BIN/pg_ctl" -D "$own/data" -l "$own/server.log" -m immediate -w -t 60 \
        restart >/dev/null || fail "pg_ctl restart failed: $(tail -n 20 "$own/server.log")"
}
