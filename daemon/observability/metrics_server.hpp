#pragma once
// A small HTTP/1.1 server for Prometheus and load balancers:
//   GET /metrics  200, text/plain; version=0.0.4, the registry rendered
//   GET /healthz  200 "ok", or 503 with the reason (see metrics.hpp for the rule)
//   GET /         200, the status page (HTML), when the server was given one
// anything else 404, other methods 405. One request per connection is enough
// for scrapers, but keep-alive is honoured.

#include "config/values.hpp"

#include "observability/metrics_http.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace comeback {

class metrics_registry;

class metrics_server {
public:
    // Resolves and binds `listen` (metrics.listen, parsed by etl/config) at
    // once and starts accepting on `executor`. Throws std::system_error naming
    // the address when it cannot be resolved or bound. `registry` must outlive
    // the server. Without `status_page`, GET / is 404 like any unknown path.
    metrics_server(boost::asio::any_io_executor executor, const listen_address& listen,
                   const metrics_registry& registry, status_page_source status_page = {});
    // Stops accepting and closes open connections.
    ~metrics_server();
    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;

    // The bound port: the one asked for, or the free one port 0 got.
    std::uint16_t port() const;
    // Stops accepting and closes connections; safe from any thread, idempotent.
    void stop();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace comeback
