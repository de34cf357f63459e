#pragma once
// The /metrics and /healthz listener for Prometheus and load balancers, and
// the status page (/) for people. What
// it answers is metrics_http.hpp's; this is the part with sockets, built so
// that no client, however hostile, can take the daemon down or slow the sync:
//   - it runs on a thread and io_context of its own: a flood, a slow client or
//     a slow render never delays the sync's I/O;
//   - every connection reads into a fixed buffer of max_request_head_bytes and
//     never reads a request body;
//   - a request must arrive whole within metrics.request_timeout, and its
//     response be taken within it again;
//   - at most metrics.max_connections are open: one more closes the oldest, so
//     a well-behaved client always gets in and file descriptors stay bounded;
//   - a failed accept (out of file descriptors) waits 100 ms, doubling to 1 s,
//     before the next, instead of spinning;
//   - repeated trouble is logged at most once per 10 s, with a count; the
//     metrics (metrics.hpp, metrics_*) count every occurrence.

#include "observability/metrics_http.hpp"

#include <cstdint>
#include <memory>

namespace comeback {

struct metrics_config;
class metrics_registry;

class metrics_server {
public:
    // Resolves and binds settings.listen at once, then serves on its own
    // thread. Throws std::system_error naming the address when it cannot be
    // resolved or bound, std::invalid_argument when settings.listen is empty.
    // `registry` must outlive the server, which counts its own connections and
    // answers into it.
    // Without `status_page`, GET / is 404 like any unknown path.
    metrics_server(const metrics_config& settings, metrics_registry& registry,
                   status_page_source status_page = {});
    // stop()
    ~metrics_server();
    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;

    // The bound port: the one asked for, or the free one port 0 got.
    std::uint16_t port() const;
    // Stops accepting, closes every connection and waits for the server's
    // thread to end. Idempotent; call it from any thread but the server's own.
    void stop();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace comeback
