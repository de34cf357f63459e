// The back-off rule, pure, and the retry driver against the fake server.

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
    unsigned sinks_made = 0;
    std::vector<std::string> bodies;
    std::vector<std::chrono::milliseconds> delays;
};

fetch_result retried(vitec_client& client, net::io_context& io, const window_request& request,
                     const retry_config& config, attempt_log& log) {
    std::mt19937_64 rng(7);
    sink_factory make_sink = [&log] {
        ++log.sinks_made;
        log.bodies.emplace_back();
        auto index = log.bodies.size() - 1;
        // A fresh JSON reader per attempt, throwing response_error like the real parser.
        auto json = std::make_shared<boost::json::stream_parser>();
        return body_sink([&log, index, json](std::string_view chunk) -> net::awaitable<void> {
            log.bodies[index].append(chunk);
            boost::system::error_code error;
            json->write_some(chunk.data(), chunk.size(), error);
            if (error) throw response_error("not JSON: " + error.message());
            co_return;
        });
    };
    retry_observer observe = [&log](unsigned, const fetch_result&, std::chrono::milliseconds delay) {
        log.delays.push_back(delay);
    };
    return run(io, fetch_with_retries(client, request, make_sink, config, rng, observe));
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
        REQUIRE(result.ok());
        CHECK(result.attempts == 2);
        CHECK(log.sinks_made == 2);
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
    CHECK(result.kind() == fetch_kind::access_denied);
    CHECK(result.attempts == 1);
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
    CHECK(result.kind() == fetch_kind::transient);
    CHECK(result.http_status == 502);
    CHECK(result.attempts == 4);
    CHECK(log.delays.size() == 3);
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
    CHECK(result.ok());
    CHECK(result.attempts == 2);
    REQUIRE(log.delays.size() == 1);
    CHECK(log.delays[0] == 1000ms);
    CHECK(std::chrono::steady_clock::now() - started >= 1000ms);
}
