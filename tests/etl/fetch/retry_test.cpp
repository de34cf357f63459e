// The back-off rule, pure, and the one retry driver around the client against
// the fake server.

#include "fetch/retry.hpp"
#include "fetch/vitec_client.hpp"

#include "fake_vitec_server.hpp"
#include "parse/response_parser.hpp"

#include <boost/json/stream_parser.hpp>

#include <catch2/catch.hpp>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;
namespace net = boost::asio;

TEST_CASE("the delay before retry n is full jitter under an exponential, capped ceiling") {
    retry_config config;
    config.base_delay = 100ms;
    config.max_delay = 1000ms;
    std::mt19937_64 rng(42);
    for (unsigned retry = 1; retry <= 8; ++retry) {
        const auto ceiling = std::min(std::chrono::milliseconds(100 << (retry - 1)), 1000ms);
        auto lowest = ceiling, highest = 0ms;
        for (int i = 0; i < 2000; ++i) {
            auto delay = retry_delay(config, retry, std::nullopt, rng);
            REQUIRE(delay >= 0ms);
            REQUIRE(delay <= ceiling);
            lowest = std::min(lowest, delay);
            highest = std::max(highest, delay);
        }
        INFO("retry " << retry);
        CHECK(lowest < ceiling / 10);   // spread over the whole range,
        CHECK(highest > ceiling * 9 / 10);  // not bunched at one end
    }
    CHECK(retry_delay(config, 1000, std::nullopt, rng) <= 1000ms);  // no overflow however many
}

TEST_CASE("a server's Retry-After takes precedence, capped by max_retry_after") {
    retry_config config;
    config.max_retry_after = 30s;
    std::mt19937_64 rng(1);
    CHECK(retry_delay(config, 1, 12s, rng) == 12s);
    CHECK(retry_delay(config, 5, 0s, rng) == 0s);
    CHECK(retry_delay(config, 1, 3600s, rng) == 30s);
}

namespace {

struct attempt_log {
    std::vector<std::string> bodies;                   // one per attempt
    std::vector<std::chrono::milliseconds> delays;     // one per retry
    std::vector<std::optional<std::chrono::milliseconds>> next_delays;  // one per failure
};

struct retried_fetch {
    retry_result retries;
    fetch_result last;  // the last attempt's result
};

// The driver around client.fetch, as the daemon uses it: each attempt gets a
// fresh sink with a fresh JSON reader that throws response_error like the
// real parser.
retried_fetch retried(vitec_client& client, net::io_context& io, const window_request& request,
                      const retry_config& config, attempt_log& log) {
    std::mt19937_64 rng(7);
    retried_fetch out;
    attempt_step attempt = [&](unsigned) -> net::awaitable<std::optional<failure>> {
        log.bodies.emplace_back();
        auto& body = log.bodies.back();
        auto json = std::make_shared<boost::json::stream_parser>();
        body_sink sink = [&body, json](std::string_view chunk) -> net::awaitable<void> {
            body.append(chunk);
            boost::system::error_code error;
            json->write_some(chunk.data(), chunk.size(), error);
            if (error) throw response_error("not JSON: " + error.message());
            co_return;
        };
        out.last = co_await client.fetch(request, sink);
        co_return out.last.failure;
    };
    failure_observer observe = [&](unsigned, const failure&,
                                   std::optional<std::chrono::milliseconds> next) -> net::awaitable<void> {
        log.next_delays.push_back(next);
        co_return;
    };
    const retry_wait plain = timer_wait(io.get_executor());
    retry_wait wait = [&](std::chrono::milliseconds delay) {
        log.delays.push_back(delay);
        return plain(delay);
    };
    out.retries = run(io, run_with_retries(config, rng, attempt, observe, wait));
    return out;
}

const secret password("pw");

window_request window(std::string from) {
    return {"M1", &password, std::move(from), "2024-12-31T00:00:00", "Occurrence"};
}

}  // namespace

TEST_CASE("in chaos mode every first attempt fails differently and the second succeeds afresh") {
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "300", "--chaos"});
    auto config = local_config(server);
    config.request_timeout = 5s;
    for (int month = 1; month <= 7; ++month) {  // seven URLs: each of the chaos failures once
        // A fresh client each time: a reset on a reused keep-alive connection
        // is (rightly) taken for a stale connection and resent at once.
        net::io_context io;
        vitec_client client(io.get_executor(), config);
        attempt_log log;
        auto from = "2024-0" + std::to_string(month) + "-01T00:00:00";
        auto result = retried(client, io, window(from), config.retry, log);
        INFO(from);
        REQUIRE(result.retries.ok());
        REQUIRE(result.last.ok());
        CHECK(result.retries.attempts == 2);
        CHECK(log.bodies.size() == 2);
        REQUIRE(log.delays.size() == 1);
        CHECK(log.delays[0] <= 50ms);
        CHECK(log.bodies[1].front() == '[');
        CHECK(log.bodies[1].back() == ']');
    }
}

TEST_CASE("retries stop at a kind that is not retryable") {
    fake_vitec_server server({"--default-password", "pw", "--forbidden", "M1"});
    net::io_context io;
    vitec_client client(io.get_executor(), local_config(server));
    attempt_log log;
    auto result = retried(client, io, window("2024-01-01T00:00:00"), local_config(server).retry, log);
    REQUIRE(result.retries.last_failure);
    CHECK(result.retries.last_failure->kind == failure_kind::access_denied);
    CHECK(result.retries.attempts == 1);
    CHECK(log.delays.empty());
    CHECK(log.next_delays == std::vector<std::optional<std::chrono::milliseconds>>{std::nullopt});
    CHECK(server.stats().at("requests").as_int64() == 1);
}

TEST_CASE("retries give up after max_attempts, with the last failure") {
    fake_vitec_server server({"--default-password", "pw", "--fault", "status=502"});
    auto config = local_config(server);
    config.retry.max_attempts = 4;
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    attempt_log log;
    auto result = retried(client, io, window("2024-01-01T00:00:00"), config.retry, log);
    REQUIRE(result.retries.last_failure);
    CHECK(result.retries.last_failure->kind == failure_kind::transient);
    CHECK(result.retries.last_failure->http_status == 502);
    CHECK(result.retries.attempts == 4);
    CHECK(log.delays.size() == 3);
    REQUIRE(log.next_delays.size() == 4);
    CHECK_FALSE(log.next_delays.back());  // the last failure is final
    CHECK(server.stats().at("requests").as_int64() == 4);
}

TEST_CASE("a throttled attempt waits the server's Retry-After before the next") {
    fake_vitec_server server({"--default-password", "pw"});
    auto config = local_config(server);
    config.retry.max_retry_after = 10s;
    server.control("/_control/fault?count=1&spec=status=429,retry-after=1");
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    attempt_log log;
    auto started = std::chrono::steady_clock::now();
    auto result = retried(client, io, window("2024-01-01T00:00:00"), config.retry, log);
    CHECK(result.retries.ok());
    CHECK(result.retries.attempts == 2);
    REQUIRE(log.delays.size() == 1);
    CHECK(log.delays[0] == 1000ms);
    CHECK(std::chrono::steady_clock::now() - started >= 1000ms);
}

TEST_CASE("a wait that says stop ends the retries with the last failure") {
    fake_vitec_server server({"--default-password", "pw", "--fault", "status=500"});
    auto config = local_config(server);
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    std::mt19937_64 rng(3);
    unsigned waits = 0;
    attempt_step attempt = [&](unsigned) -> net::awaitable<std::optional<failure>> {
        co_return (co_await client.fetch(window("2024-01-01T00:00:00"),
                                         [](std::string_view) -> net::awaitable<void> { co_return; }))
            .failure;
    };
    retry_wait stop = [&](std::chrono::milliseconds) -> net::awaitable<bool> {
        ++waits;
        co_return false;
    };
    auto result = run(io, run_with_retries(config.retry, rng, attempt, {}, stop));
    CHECK(result.attempts == 1);
    CHECK(waits == 1);
    REQUIRE(result.last_failure);
    CHECK(result.last_failure->http_status == 500);
    CHECK(server.stats().at("requests").as_int64() == 1);
}

TEST_CASE("an exception from an attempt is not retried: it leaves the driver") {
    retry_config config;
    config.max_attempts = 5;
    net::io_context io;
    std::mt19937_64 rng(3);
    unsigned attempts = 0;
    attempt_step attempt = [&](unsigned) -> net::awaitable<std::optional<failure>> {
        ++attempts;
        throw std::logic_error("a bug");
        co_return std::nullopt;
    };
    CHECK_THROWS_AS(run(io, run_with_retries(config, rng, attempt, {}, timer_wait(io.get_executor()))),
                    std::logic_error);
    CHECK(attempts == 1);
}
