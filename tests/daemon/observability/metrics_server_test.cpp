#include "observability/metrics_server.hpp"

#include "observability/metrics.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <catch2/catch.hpp>

#include <future>
#include <optional>
#include <thread>

using namespace comeback;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

// Loopback, any free port.
const listen_address any_loopback_port{"127.0.0.1", 0};

// The real server on an ephemeral loopback port, its io_context on a thread.
struct running_server {
    explicit running_server(const metrics_registry& registry)
        : server(context.get_executor(), any_loopback_port, registry),
          thread([this] { context.run(); }) {}
    ~running_server() {
        server.stop();
        thread.join();
    }
    asio::io_context context;
    metrics_server server;
    std::thread thread;
};

http::response<http::string_body> request(std::uint16_t port, http::verb method,
                                          std::string target) {
    asio::io_context context;
    asio::ip::tcp::socket socket(context);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "127.0.0.1");
    http::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    return response;
}

}  // namespace

TEST_CASE("the server answers /metrics with the registry in Prometheus format") {
    metrics_registry registry(300s);
    registry.window_succeeded("M1", {.inserted = 7}, 1s);
    running_server running(registry);

    const auto response = request(running.server.port(), http::verb::get, "/metrics");
    CHECK(response.result() == http::status::ok);
    CHECK(response[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
    // By default a customer out of trouble is in the totals (metrics.per_customer_series).
    CHECK(response.body().find("comeback_sync_rows_total{change=\"inserted\"} 7\n") != std::string::npos);
}

TEST_CASE("/healthz says ok while healthy and 503 with the reason when not") {
    metrics_registry healthy(300s);
    running_server a(healthy);
    const auto ok = request(a.server.port(), http::verb::get, "/healthz");
    CHECK(ok.result() == http::status::ok);
    CHECK(ok.body() == "ok\n");

    metrics_registry stale(1s, metrics_registry::clock::now() - 10s);
    running_server b(stale);
    const auto bad = request(b.server.port(), http::verb::get, "/healthz");
    CHECK(bad.result() == http::status::service_unavailable);
    CHECK(bad.body().find("no customer has succeeded") != std::string::npos);
}

TEST_CASE("unknown paths are 404 and other methods 405") {
    metrics_registry registry(300s);
    running_server running(registry);
    CHECK(request(running.server.port(), http::verb::get, "/").result() == http::status::not_found);
    CHECK(request(running.server.port(), http::verb::post, "/metrics").result() ==
          http::status::method_not_allowed);
}

TEST_CASE("a taken port is refused naming the address") {
    metrics_registry registry(300s);
    running_server first(registry);
    asio::io_context context;
    const listen_address taken{"127.0.0.1", first.server.port()};
    CHECK_THROWS_WITH(metrics_server(context.get_executor(), taken, registry),
                      Catch::Contains("127.0.0.1:" + std::to_string(taken.port)) && Catch::Contains("bind"));
}

TEST_CASE("stopping the server closes a connected client and lets its io_context finish") {
    metrics_registry registry(300s);
    asio::io_context context;
    metrics_server server(context.get_executor(), any_loopback_port, registry);
    std::packaged_task<void()> run_all([&] { context.run(); });
    auto ran_out = run_all.get_future();
    std::thread runner(std::move(run_all));

    asio::io_context client_context;
    asio::ip::tcp::socket idle(client_context);
    idle.connect({asio::ip::make_address("127.0.0.1"), server.port()});
    // Connections are accepted in order: once a later one is answered, the
    // idle one has been accepted and has a session waiting for its request.
    CHECK(request(server.port(), http::verb::get, "/metrics").result() == http::status::ok);

    server.stop();
    // The bound only ends a broken test instead of hanging it: a working stop()
    // lets run() return at once.
    const bool finished = ran_out.wait_for(60s) == std::future_status::ready;
    if (!finished) context.stop();
    runner.join();
    CHECK(finished);

    // The server closed the idle connection: its client reads the end of the
    // stream rather than waiting forever.
    char byte = 0;
    std::optional<boost::system::error_code> read_error;
    idle.async_read_some(asio::buffer(&byte, 1),
                         [&](boost::system::error_code error, std::size_t) { read_error = error; });
    client_context.run_for(60s);
    REQUIRE(read_error.has_value());
    CHECK((*read_error == asio::error::eof || *read_error == asio::error::connection_reset));
}

TEST_CASE("GET / serves the status page as HTML that may run nothing, and is unknown without one") {
    metrics_registry registry(300s);
    {
        running_server plain(registry);
        CHECK(request(plain.server.port(), http::verb::get, "/").result() == http::status::not_found);
    }
    asio::io_context context;
    std::string asked;
    metrics_server server(context.get_executor(), any_loopback_port, registry,
                          [&](std::string_view target) {
                              asked = target;
                              return std::string("<!DOCTYPE html><p>page</p>");
                          });
    std::thread thread([&] { context.run(); });
    const auto response = request(server.port(), http::verb::get, "/?page=2");
    server.stop();
    thread.join();
    CHECK(response.result() == http::status::ok);
    CHECK(response.body() == "<!DOCTYPE html><p>page</p>");
    CHECK(asked == "/?page=2");
    CHECK(response[http::field::content_type] == "text/html; charset=utf-8");
    CHECK(response["Content-Security-Policy"] ==
          "default-src 'none'; style-src 'unsafe-inline'");
}
