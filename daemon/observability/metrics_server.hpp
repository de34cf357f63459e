#pragma once
// A small HTTP/1.1 server for Prometheus and load balancers:
//   GET /metrics  200, text/plain; version=0.0.4, the registry rendered
//   GET /healthz  200 "ok", or 503 with the reason (see metrics.hpp for the rule)
// anything else 404, other methods 405. One request per connection is enough
// for scrapers, but keep-alive is honoured.

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace comeback {

class metrics_registry;

// "host:port", "[v6-address]:port" or ":port" (every interface). Port 0 picks
// a free port. Throws std::invalid_argument naming the text when malformed.
struct listen_address {
    std::string host;
    std::uint16_t port = 0;
};
listen_address parse_listen_address(std::string_view text);

class metrics_server {
public:
    // Resolves and binds `listen` (metrics.listen) at once and starts accepting
    // on `executor`. Throws std::invalid_argument for a malformed address and
    // std::system_error naming the address when it cannot be bound.
    // `registry` must outlive the server.
    metrics_server(boost::asio::any_io_executor executor, std::string_view listen,
                   const metrics_registry& registry);
    // Stops accepting and closes open connections.
    ~metrics_server();
    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;

    // The bound port (useful with port 0).
    std::uint16_t port() const;
    // Stops accepting and closes connections; safe from any thread, idempotent.
    void stop();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace comeback
