// Politeness: the concurrency and rate caps as the server sees them, and
// fairness between customers.

#include "fetch/request_limiter.hpp"
#include "fetch/vitec_client.hpp"

#include "fake_vitec_server.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;
namespace net = boost::asio;

namespace {

const secret password("pw");

// Starts `count` fetches of distinct windows at once and runs them all.
std::vector<fetch_result> fetch_all_at_once(vitec_client& client, net::io_context& io, int count) {
    std::vector<fetch_result> results(count);
    for (int i = 0; i < count; ++i) {
        net::co_spawn(io, [&, i]() -> net::awaitable<void> {
            window_request request{"M1", &password, "2024-01-" + std::to_string(10 + i) + "T00:00:00",
                                   "2024-02-01T00:00:00", "Occurrence"};
            results[i] = co_await client.fetch(request, [](std::string_view) -> net::awaitable<void> { co_return; });
        }, net::detached);
    }
    io.run();
    return results;
}

}  // namespace

TEST_CASE("no more than max_concurrent_requests are in flight at the server") {
    fake_vitec_server server({"--default-password", "pw", "--fault", "latency=150", "--rows-per-customer", "20"});
    auto config = local_config(server);
    config.max_concurrent_requests = 3;
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    auto results = fetch_all_at_once(client, io, 12);
    for (const auto& result : results) CHECK(result.ok());
    auto stats = server.stats();
    CHECK(stats.at("requests").as_int64() == 12);
    CHECK(stats.at("peak_in_flight").as_int64() == 3);
}

TEST_CASE("no more than max_requests_per_second start, evenly spaced") {
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "20"});
    auto config = local_config(server);
    config.max_concurrent_requests = 8;
    config.max_requests_per_second = 20;
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    auto started = std::chrono::steady_clock::now();
    auto results = fetch_all_at_once(client, io, 21);
    auto elapsed = std::chrono::steady_clock::now() - started;
    for (const auto& result : results) CHECK(result.ok());
    CHECK(elapsed >= 950ms);  // 20 gaps of 50 ms after the first
    CHECK(elapsed < 3s);
}

TEST_CASE("waiting customers take turns, so one with many windows cannot starve another") {
    net::io_context io;
    request_limiter limiter(io.get_executor(), 1, 0);
    std::vector<std::string> order;
    auto request = [&](std::string customer) -> net::awaitable<void> {
        auto permit = co_await limiter.acquire(customer);
        order.push_back(customer);
        net::steady_timer hold(io, 5ms);
        co_await hold.async_wait(net::use_awaitable);
    };
    for (int i = 0; i < 6; ++i) net::co_spawn(io, request("big"), net::detached);
    for (int i = 0; i < 2; ++i) net::co_spawn(io, request("small"), net::detached);
    io.run();
    // The first "big" starts at once; from then on the two queues alternate.
    CHECK(order == std::vector<std::string>{"big", "big", "small", "big", "small", "big", "big", "big"});
    CHECK(limiter.in_flight() == 0);
}
