# Throwaway PostgreSQL 15 clusters for tests, the demo and the benchmarks.
# Source this file, then:
#   pg_start DIR    initdb in DIR, start on a Unix socket in DIR and a free
#                   loopback port, create database comeback, export PG* for libpq
#   pg_stop DIR     stop the cluster and remove DIR
# As root, the cluster runs as the `postgres` user (PostgreSQL refuses root).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

pg__as_owner() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg__free_port() {
    local port
    for ((port = 15432 + RANDOM % 20000; port < 65000; port++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

pg_start() {
    local dir=$1 port
    mkdir -p "$dir"
    ((EUID == 0)) && chown postgres: "$dir"
    chmod 700 "$dir"
    port=$(pg__free_port) || { echo "postgres: no free port" >&2; return 1; }
    pg__as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 256MB
max_wal_size = 4GB
CONF
    pg__as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; return 1; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=comeback
    "$PG_BIN/createdb" comeback
    echo "postgres: throwaway cluster on $dir port $port"
}

pg_stop() {
    local dir=$1
    [[ -d "$dir/data" ]] &&
        pg__as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$dir"
}
