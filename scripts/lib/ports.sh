# A free TCP port on 127.0.0.1 for a test's or the bench's own server, sourced
# by scripts/lib/postgres.sh, tests/e2e/lib.sh and tests/bench/lib.sh.

# free_tcp_port: prints a port nothing listens on, below the kernel's
# ephemeral range: a port inside it can be the local end of any outgoing
# connection on the machine (a daemon's, a parallel test's), and a server
# bound to it later fails with "Address already in use". Returns 1 when none
# is free.
free_tcp_port() {
    local low=32768 start port
    [[ -r /proc/sys/net/ipv4/ip_local_port_range ]] && read -r low _ </proc/sys/net/ipv4/ip_local_port_range
    ((low > 11024)) || low=65000  # an unusual range: search above the reserved ports as before
    start=$((10000 + RANDOM % (low - 10000)))
    for port in $(seq "$start" $((low - 1))) $(seq 10000 $((start - 1))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
    done
    return 1
}
