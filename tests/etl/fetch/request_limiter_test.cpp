// Politeness: the concurrency and rate caps as the server sees them, and
// fairness between customers.

#include "fetch/request_limiter.hpp"
#include "fetch/vitec_client.hpp"

#include "fake_vitec_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <functional>
#include <thread>
#include <vector>

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

namespace {

// Starts `count` requests at once on `limiter`, each holding its slot for
// `hold(k)` (k: the order it was granted in) with the I/O thread blocked, as a
// busy process is late for the limiter's next timer. Returns when each started.
std::vector<std::chrono::steady_clock::time_point> grants(net::io_context& io, request_limiter& limiter, int count,
                                                          std::function<std::chrono::milliseconds(int)> hold) {
    std::vector<std::chrono::steady_clock::time_point> at;
    for (int i = 0; i < count; ++i) {
        net::co_spawn(io, [&]() -> net::awaitable<void> {
            auto permit = co_await limiter.acquire("M1");
            const int k = static_cast<int>(at.size());
            at.push_back(std::chrono::steady_clock::now());
            // Lets the requests not yet asking ask first, so they wait while it blocks.
            co_await net::post(io, net::use_awaitable);
            std::this_thread::sleep_for(hold(k));
        }, net::detached);
    }
    io.run();
    return at;
}

}  // namespace

TEST_CASE("a start the I/O thread was late for is made up, so a busy process keeps the pace") {
    // 20 a second: a start every 50 ms. Every other request blocks the thread
    // for 80 ms, so the limiter's timer fires 30 ms late; made up, the next
    // start follows 20 ms later and each pair takes 100 ms. Lost (a bucket of
    // one token), each pair would take 130 ms.
    net::io_context io;
    request_limiter limiter(io.get_executor(), 8, 20, 100ms);
    const auto at = grants(io, limiter, 11, [](int k) { return k % 2 == 0 ? 80ms : 0ms; });
    REQUIRE(at.size() == 11);
    const auto elapsed = at.back() - at.front();
    CHECK(elapsed < 575ms);   // 650 ms when the lateness is lost
    CHECK(elapsed >= 400ms);  // 10 intervals, less at most the 100 ms made up
}

TEST_CASE("lateness is made up only as far as the catch-up reaches") {
    // The thread is blocked for 500 ms (ten starts' time) with requests
    // waiting: at most 1 + 100 ms' worth (two) start at once after it, the
    // rest at the even pace.
    net::io_context io;
    request_limiter limiter(io.get_executor(), 16, 20, 100ms);
    const auto at = grants(io, limiter, 8, [](int k) { return k == 0 ? 500ms : 0ms; });
    REQUIRE(at.size() == 8);
    int together = 0;  // started within 10 ms of the stall's end
    for (std::size_t k = 1; k < at.size(); ++k) together += at[k] - at[1] < 10ms;
    CHECK(together == 3);
    CHECK(at.back() - at[1] >= 4 * 50ms - 5ms);  // the other four follow a start every 50 ms
}

TEST_CASE("a quiet spell earns no burst: after it, starts are spaced again") {
    net::io_context io;
    request_limiter limiter(io.get_executor(), 8, 20, 100ms);
    std::vector<std::chrono::steady_clock::time_point> at;
    net::co_spawn(io, [&]() -> net::awaitable<void> {
        // Two before: the second waits for its token, as a busy limiter's requests do.
        { auto first = co_await limiter.acquire("M1"); }
        { auto second = co_await limiter.acquire("M1"); }
        net::steady_timer quiet(io, 300ms);
        co_await quiet.async_wait(net::use_awaitable);
        for (int i = 0; i < 3; ++i) {
            net::co_spawn(io, [&]() -> net::awaitable<void> {
                auto permit = co_await limiter.acquire("M2");
                at.push_back(std::chrono::steady_clock::now());
            }, net::detached);
        }
    }, net::detached);
    io.run();
    REQUIRE(at.size() == 3);
    // One at once, the others 50 ms apart (timers never fire early). Had the
    // quiet 300 ms counted as lateness, all three would start together.
    CHECK(at[2] - at[0] >= 100ms - 1ms);
}

TEST_CASE("the limiter counts the requests waiting for a start, the starts and their waits") {
    net::io_context io;
    request_limiter limiter(io.get_executor(), 1, 20);  // a start every 50 ms, one at a time
    auto stats = std::make_shared<wait_stats>();
    limiter.count_into(stats);
    std::vector<std::uint64_t> waiting_seen;
    for (int i = 0; i < 3; ++i) {
        net::co_spawn(io, [&]() -> net::awaitable<void> {
            auto permit = co_await limiter.acquire("M1");
            co_await net::post(io, net::use_awaitable);  // the others ask meanwhile
            waiting_seen.push_back(stats->waiting.load());
        }, net::detached);
    }
    io.run();
    // The first starts at once; the second waited with the third behind it.
    CHECK(waiting_seen == std::vector<std::uint64_t>{2, 1, 0});
    CHECK(stats->waiting == 0);
    CHECK(stats->started == 3);
    CHECK(stats->wait_microseconds >= 150'000 - 2'000);  // 50 and 100 ms, timers never early
}
