# Helpers of tests/bench/run, sourced by it (and by its parts). They use the
# run's globals: work, password, pids, fake_bin, sync_bin.

say() { printf 'bench: %s\n' "$*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/ports.sh"
# Makes a signal end the script through its EXIT trap, so the servers it
# started are stopped however it ends: interrupted, timed out, or its output
# closed early (`| head`), which would otherwise kill it with SIGPIPE before
# any trap ran. Call it after `trap cleanup EXIT`.
exit_on_signals() {
    trap 'trap "" PIPE; exit 141' PIPE
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
fail() { say "FAILED: $*"; exit 1; }
# Floating-point arithmetic for figures and ratios: calc EXPRESSION [DECIMALS].
calc() { awk "BEGIN { printf \"%.${2:-2}f\", ($1) }"; }
now() { date +%s.%N; }
kib_to_mib() { calc "$1 / 1024" 1; }
mib() { kib_to_mib "$1"; }
# met or **missed**, for the table: verdict AWK-CONDITION.
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "**missed**"; fi; }
# A figure of the run must be a number, or the bench fails (the small run is a test).
number() {
    [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "a figure was not produced: $1 = '$2'"
}

# A line of the table: row NUMBER "| ... |". Lines are sorted by NUMBER (stable),
# so each part of the run adds its rows when its figures exist.
row() { printf '%s\t%s\n' "$1" "$2" >>"$work/table.rows"; }

# PostgreSQL's own psql, not Debian's wrapper in PATH: the wrapper is a Perl
# script, and the fleet rows poll twice a second on the same two cores as
# what they measure (psql, Perl and their startup were 5 % of all CPU samples
# of a first cycle; the binary alone costs about a third of that).
sql() {
    PGOPTIONS="-c client_min_messages=warning" "${PG_BIN:-/usr/lib/postgresql/15/bin}/psql" \
        -X -q -v ON_ERROR_STOP=1 -At "$@"
}

# A fresh, migrated database: fresh_database NAME CONFIG.
fresh_database() {
    sql -d postgres -c "DROP DATABASE IF EXISTS $1" && createdb "$1"
    "$sync_bin" migrate -c "$2" >"$work/migrate-$1.log" 2>&1 ||
        { cat "$work/migrate-$1.log" >&2; fail "comeback-sync migrate ($1)"; }
}

# ---------------------------------------------------------------- processes
# CPU ticks (user + system) of a process; divide by clk_tck for seconds.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# The CPU every process of the machine spent, in clock ticks since boot
# (user, nice, system, irq and softirq of /proc/stat's first line): two reads
# around a step give what the step cost the whole machine, the daemon's
# PostgreSQL and fake server included, which its own CPU leaves out.
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
# Seconds of CPU the machine spent since machine_busy read BUSY: machine_seconds BUSY.
machine_seconds() { calc "($(machine_busy) - $1) / $clk_tck" 2; }

# Runs a command under /usr/bin/time -v; sets wall_s, cpu_s (its own user +
# system time, so the table shows whether the process or the database is busy),
# machine_s (what every process of the machine spent meanwhile, machine_busy)
# and peak_kib. Its output goes to $work/$1.log. Fails the bench when the
# command fails.
timed() {
    local name=$1 start end busy
    shift
    busy=$(machine_busy)
    start=$(now)
    /usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1 ||
        { tail -n 40 "$work/$name.log" >&2; fail "$name: '$*' exited non-zero"; }
    end=$(now)
    machine_s=$(machine_seconds "$busy")
    wall_s=$(calc "$end - $start" 3)
    peak_kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.time")
    cpu_s=$(awk -F': ' '/User time|System time/ { sum += $2 } END { printf "%.2f", sum }' "$work/$name.time")
}

# ---------------------------------------------------------------- fake Vitec servers
# Starts a fake server on a free port; sets fake_url and fake_pid. $1 names it.
start_fake() {
    local name=$1 tries
    shift
    "$fake_bin" --port-file "$work/$name.port" "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    for ((tries = 0; tries < 600; tries++)); do
        [[ -s $work/$name.port ]] && break
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/$name.log" >&2; fail "fake-vitec $name exited"; }
        sleep 0.1
    done
    [[ -s $work/$name.port ]] || fail "fake-vitec $name wrote no port file"
    fake_url="http://127.0.0.1:$(cat "$work/$name.port")" fake_pid=${pids[-1]}
}

# A number from a fake server's /_control/stats: fake_stat URL KEY.
fake_stat() { curl -sS --fail --max-time 30 "$1/_control/stats" | sed -n "s/^{.*\"$2\":\([0-9]*\).*/\1/p"; }
# Sets a fake server's network conditions: fake_network URL LATENCY_MS BANDWIDTH.
fake_network() {
    curl -sS --fail --max-time 30 -X POST "$1/_control/network?latency=$2&bandwidth=$3" >/dev/null ||
        fail "could not set the fake server's network to latency $2 ms, bandwidth $3"
}

# Customer ids for a data set of $1 customers with id prefix $2, one "id password"
# a line; every customer has the same password (fake-vitec --default-password).
customer_list() {
    local i
    for ((i = 1; i <= $1; i++)); do printf '%s%05d %s\n' "$2" "$i" "$password"; done
}
# The ids alone, one a line, for fake-vitec --customers-file.
customer_ids_file() { awk '{ print $1 }' "$1" >"$2"; }

# ---------------------------------------------------------------- windows
# Days since 1970-01-01 of a YYYY-MM-DD day, and back.
day_number() { echo $(($(date -u -d "$1 00:00" +%s) / 86400)); }
day_text() { date -u -d "@$(($1 * 86400))" +%F; }
# The windows of N days covering FROM..TO (both inclusive), aligned as the
# daemon aligns them (docs/design.md, "Windows": to Monday 2000-01-03):
# "first_day end_day" a line, end_day exclusive. plan_windows FROM TO N.
plan_windows() {
    local from to n anchor first start
    from=$(day_number "$1") to=$(day_number "$2") n=$3 anchor=$(day_number 2000-01-03)
    first=$((from - anchor >= 0 ? (from - anchor) / n : -((anchor - from + n - 1) / n)))
    for ((start = anchor + first * n; start <= to; start += n)); do
        echo "$(day_text "$start") $(day_text $((start + n)))"
    done
}

# The fetch floor: every window of every customer downloaded with PARALLEL
# keep-alive connections by curl, as fast as the server sends; the fastest of
# three such downloads.
#   fetch_floor NAME BASE_URL CUSTOMER_LIST WINDOWS_FILE PARALLEL
# Sets floor_s, floor_bytes and floor_requests, and of the fastest download
# floor_curl_cpu_s (curl's own CPU: one thread) and floor_machine_s (what the
# machine spent, the server's share included); fails unless every answer is 200.
fetch_floor() {
    local name=$1 base=$2 list=$3 windows=$4 parallel=$5 id first end start stop
    {
        printf 'user = "bench:%s"\n' "$password"
        echo 'header = "Accept: application/json"'
        echo 'silent'
        echo 'show-error'
        echo 'write-out = "%{http_code} %{size_download}\n"'
        while read -r id _; do
            while read -r first end; do
                printf 'url = "%s/Report/Task/%s/Comeback?from=%sT00:00:00&to=%sT00:00:00&date=Occurrence"\n' \
                    "$base" "$id" "$first" "$end"
                echo 'output = "/dev/null"'
            done <"$windows"
        done <"$list"
    } >"$work/$name.curl"
    # On a busy machine one download's time moved by a factor of three from
    # run to run; a floor is a best case.
    local round took busy spent_s
    floor_s= floor_curl_cpu_s= floor_machine_s=
    for round in 1 2 3; do
        busy=$(machine_busy)
        start=$(now)
        /usr/bin/time -f '%U %S' -o "$work/$name.time" \
            curl --parallel --parallel-immediate --parallel-max "$parallel" -K "$work/$name.curl" \
            >"$work/$name.out" 2>"$work/$name.err" || { cat "$work/$name.err" >&2; fail "$name: curl failed"; }
        stop=$(now)
        spent_s=$(machine_seconds "$busy")
        took=$(calc "$stop - $start" 3)
        if [[ -z $floor_s ]] || awk "BEGIN { exit !($took < $floor_s) }"; then
            floor_s=$took
            floor_machine_s=$spent_s
            floor_curl_cpu_s=$(awk '{ printf "%.2f", $1 + $2 }' "$work/$name.time")
        fi
    done
    floor_requests=$(wc -l <"$work/$name.out")
    floor_bytes=$(awk '{ sum += $2 } END { printf "%d", sum }' "$work/$name.out")
    local expected=$(($(wc -l <"$list") * $(wc -l <"$windows")))
    ((floor_requests == expected)) || fail "$name: curl made $floor_requests requests, not $expected"
    awk '$1 != 200 { bad = 1 } END { exit bad }' "$work/$name.out" || fail "$name: an answer was not 200"
}

# Writes a comeback-sync configuration: write_config FILE BASE_URL CONNINFO
# CUSTOMER_LIST, then sync settings as key: value lines on stdin. Every
# customer takes the default password. These variables, when set, change it:
# cfg_concurrency (max_concurrent_requests, 4), cfg_rate (max_requests_per_second,
# 1000), cfg_timeout (request_timeout, 600s), cfg_metrics (metrics section
# lines), cfg_log_level (warn).
write_config() {
    local file=$1 base=$2 conninfo=$3 list=$4
    printf '%s\n' "$password" >"$work/password"
    chmod 600 "$work/password"
    {
        cat <<YAML
database:
  conninfo: "$conninfo"
  schema: vitec
vitec:
  base_url: $base
  timezone: Europe/Stockholm
  username: bench
  password_file: $work/password
  request_timeout: ${cfg_timeout:-600s}
  max_concurrent_requests: ${cfg_concurrency:-4}
  max_requests_per_second: ${cfg_rate:-1000}
  max_response_bytes: 16GiB
sync:
  date_criteria: Occurrence
YAML
        sed 's/^/  /'
        echo "customers:"
        awk '{ printf "  - id: \"%s\"\n    name: \"Mäklarbyrå %d\"\n", $1, NR }' "$list"
        [[ -n ${cfg_metrics:-} ]] && printf 'metrics:\n%s\n' "$cfg_metrics"
        cat <<YAML
log:
  level: ${cfg_log_level:-warn}
  format: text
YAML
    } >"$file"
}

# Row versions written to the tables whose rows are data since a mark, read
# from each row's xmin. The statistics views would be the obvious source, but a
# backend that stays connected (the daemon's pool) publishes its counters only
# some time after it goes idle, so a count taken from them can land on either
# side of a mark. A write always makes a new row version with the writer's
# xmin; locking a row or an upsert that changes nothing does not.
# write_mark [DATABASE] prints the oldest transaction still running, so a
# transaction in flight at the mark counts as after it; the bench's clusters
# are fresh, far from the 2^32 wrap of xmin.
write_mark() { sql ${1:+-d "$1"} -c "SELECT pg_snapshot_xmin(pg_current_snapshot())"; }

# rows_written_since MARK [DATABASE]
rows_written_since() {
    sql ${2:+-d "$2"} -c "SELECT count(*) FROM (
            SELECT xmin FROM vitec.comebacks UNION ALL SELECT xmin FROM vitec.contacts
            UNION ALL SELECT xmin FROM vitec.users UNION ALL SELECT xmin FROM vitec.user_groups
            UNION ALL SELECT xmin FROM vitec.offices) AS version
        WHERE version.xmin::text::bigint >= $1 % 4294967296"
}

history_rows() { sql ${1:+-d "$1"} -c "SELECT count(*) FROM vitec.comeback_history"; }

# Both marks at once, for what a run is about to write: writes_mark [DATABASE]
# prints "XMIN HISTORY_ROWS"; writes_since MARK [DATABASE] sets `written` (row
# versions) and `history` (history rows) to what was written since it.
writes_mark() { echo "$(write_mark "$@") $(history_rows "$@")"; }
writes_since() {
    local xmin history_mark
    read -r xmin history_mark <<<"$1"
    shift
    written=$(rows_written_since "$xmin" "$@")
    history=$(($(history_rows "$@") - history_mark))
}

# A free TCP port on 127.0.0.1 (scripts/lib/ports.sh).
free_port() { free_tcp_port || fail "no free port"; }

# Connections of the daemon now: every client session on this database but the
# asking one. A subquery: SELECT $daemon_connections_sql, or beside other columns.
daemon_connections_sql="(SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND backend_type = 'client backend'
                           AND pid <> pg_backend_pid())"

# The mean wait of database work for a pool session, in ms with one decimal
# ("?" before the first), from a scrape of the daemon's /metrics on stdin.
mean_session_wait_ms() {
    awk '$1 == "comeback_sync_database_session_wait_seconds_total" { w = $2 }
         $1 == "comeback_sync_database_sessions_started_total" { n = $2 }
         END { if (n > 0) printf "%.1f\n", w * 1000 / n; else print "?" }'
}
