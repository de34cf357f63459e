# Throwaway PostgreSQL 15 clusters for tests, the demo and the benchmarks.
# Source this file, then:
#   pg_start DIR [DURABILITY]
#                   initdb in DIR, start on a Unix socket in DIR and a free
#                   loopback port, create database comeback, export PG* for libpq
#   pg_durability DURABILITY
#                   switch the running cluster of PG* (ALTER SYSTEM and a reload)
#   pg_stop DIR     stop the cluster and remove DIR
# DURABILITY is `throwaway` (the default: fsync, synchronous_commit and
# full_page_writes off, for tests) or `production` (PostgreSQL's defaults,
# all on: every commit waits for its WAL to reach the disk, as in production).
# As root, the cluster runs as the `postgres` user (PostgreSQL refuses root).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

pg__as_owner() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The settings of a durability, as postgresql.conf lines.
pg__durability_settings() {
    local value
    case $1 in
        throwaway) value=off ;;
        production) value=on ;;
        *) echo "postgres: unknown durability '$1' (throwaway or production)" >&2; return 1 ;;
    esac
    printf '%s = %s\n' fsync "$value" synchronous_commit "$value" full_page_writes "$value"
}

pg_start() {
    local dir=$1 durability=${2:-throwaway} port settings
    settings=$(pg__durability_settings "$durability") || return 1
    mkdir -p "$dir"
    ((EUID == 0)) && chown postgres: "$dir"
    chmod 700 "$dir"
    port=$(free_tcp_port) || { echo "postgres: no free port" >&2; return 1; }
    pg__as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
$settings
max_connections = 200
shared_buffers = 256MB
max_wal_size = 4GB
CONF
    pg__as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; return 1; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=comeback
    "$PG_BIN/createdb" comeback
    echo "postgres: cluster on $dir port $port, $durability durability"
}

pg_durability() {
    local settings name value fsync
    settings=$(pg__durability_settings "$1") || return 1
    fsync=$(sed -n 's/^fsync = //p' <<<"$settings")
    while read -r name _ value; do
        psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER SYSTEM SET $name = $value" || return 1
    done <<<"$settings"
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SELECT pg_reload_conf()" >/dev/null || return 1
    # The reload is asynchronous: wait until a new session sees the settings.
    local tries
    for ((tries = 0; tries < 100; tries++)); do
        [[ $(psql -X -At -d postgres -c "SHOW fsync") == "$fsync" ]] && return 0
        sleep 0.1
    done
    echo "postgres: the cluster did not take durability $1" >&2
    return 1
}

pg_stop() {
    local dir=$1
    [[ -d "$dir/data" ]] &&
        pg__as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$dir"
}
