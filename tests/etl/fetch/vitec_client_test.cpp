// The client against the real fake-vitec server: every classification, the
// request it sends, keep-alive, secrets kept out of messages and logs, and a
// 200 MiB response through bounded memory.

#include "fetch/vitec_client.hpp"

#include "dataset.hpp"
#include "fake_vitec_server.hpp"
#include "parse/response_parser.hpp"
#include "support/fixtures.hpp"

#include <boost/json/stream_parser.hpp>
#include <catch2/catch.hpp>
#include <date/tz.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <span>
#include <sstream>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;
namespace net = boost::asio;

namespace {

const secret default_password("pw");

window_request year_2024(std::string customer = "M1", const secret* password = &default_password) {
    return {std::move(customer), password, "2024-01-01T00:00:00", "2025-01-01T00:00:00", "Occurrence"};
}

// Keeps the body and checks it is JSON as it arrives, throwing response_error
// like the real parser does.
struct json_sink_state {
    boost::json::stream_parser parser;
    std::string body;
    bool broken = false;
};

body_sink json_sink(std::shared_ptr<json_sink_state> state) {
    return [state](std::string_view chunk) -> net::awaitable<void> {
        state->body.append(chunk);
        boost::system::error_code error;
        state->parser.write_some(chunk.data(), chunk.size(), error);
        if (error) throw response_error("not JSON: " + error.message());
        co_return;
    };
}

fetch_result fetch_once(const vitec_config& config, const window_request& request,
                        std::shared_ptr<json_sink_state> state = std::make_shared<json_sink_state>()) {
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    return run(io, client.fetch(request, json_sink(state)));
}

fetch_result fetch_with_fault(const fake_vitec_server& server, const std::string& spec,
                              vitec_config config = {}, const window_request& request = year_2024()) {
    if (config.base_url == vitec_config{}.base_url) config = local_config(server);
    server.control("/_control/fault?count=1&spec=" + spec);
    return fetch_once(config, request);
}

std::size_t expected_rows(const fake::dataset_options& options, const std::string& customer) {
    fake::dataset data(options);
    auto index = *data.customer_index(customer);
    std::size_t count = 0;
    for (std::size_t slot = 0; slot < data.slot_count(index); ++slot)
        if (auto row = data.row(index, slot))
            if (data.matches(*row, fake::date_criterion::occurrence,
                             date::local_days{date::year{2024} / 1 / 1},
                             date::local_days{date::year{2025} / 1 / 1}))
                ++count;
    return count;
}

}  // namespace

TEST_CASE("a 200 with a JSON array is read whole into the sink") {
    fake_vitec_server server({"--customers", "M1,M2", "--rows-per-customer", "250", "--default-password", "pw"});
    auto state = std::make_shared<json_sink_state>();
    auto result = fetch_once(local_config(server), year_2024("M2"), state);
    REQUIRE(result.ok());
    CHECK(result.http_status == 200);
    CHECK(result.bytes == state->body.size());
    auto rows = boost::json::parse(state->body).as_array();
    fake::dataset_options options;
    options.customers = {"M1", "M2"};
    options.rows_per_customer = 250;
    CHECK(rows.size() == expected_rows(options, "M2"));
    CHECK(rows.at(0).as_object().at("id").as_string().starts_with("M2-"));
}

TEST_CASE("the request carries the user agent and asks for JSON") {
    fake_vitec_server server({"--default-password", "pw"});
    REQUIRE(fetch_once(local_config(server), year_2024()).ok());  // the server answers XML without Accept: json
    auto agents = server.stats().at("user_agents").as_object();
    REQUIRE(agents.size() == 1);
    CHECK(agents.begin()->key().starts_with("comeback-sync/"));
    CHECK(agents.begin()->key().size() > std::string_view("comeback-sync/").size());
}

TEST_CASE("200 responses that are not a JSON array are broken responses") {
    fake_vitec_server server({"--default-password", "pw"});
    auto html = fetch_with_fault(server, "html");
    CHECK(html.kind() == failure_kind::broken_response);
    CHECK(html.http_status == 200);
    CHECK(html.failure->message.find("text/html") != std::string::npos);
    auto object = fetch_with_fault(server, "object");
    CHECK(object.kind() == failure_kind::broken_response);
    CHECK(object.failure->message.find("not a JSON array") != std::string::npos);
    auto invalid = fetch_with_fault(server, "invalid-json");
    CHECK(invalid.kind() == failure_kind::broken_response);
    CHECK(invalid.failure->message.find("not JSON") != std::string::npos);
    CHECK(is_retryable(failure_kind::broken_response));
}

TEST_CASE("a 400 is a rejected request showing the body's message cut and sanitized") {
    fake_vitec_server server({"--default-password", "pw"});
    auto plain = fetch_with_fault(server, "status=400,message=From%20must%20be%20before%20To");
    CHECK(plain.kind() == failure_kind::request_rejected);
    CHECK(plain.failure->message.find("From must be before To") != std::string::npos);
    CHECK_FALSE(is_retryable(*plain.kind()));

    std::string long_message = "line%0Abreak%1B%5B31m" + std::string(2000, 'x');
    auto cut = fetch_with_fault(server, "status=400,message=" + long_message);
    CHECK(cut.kind() == failure_kind::request_rejected);
    CHECK(cut.failure->message.size() < 400);
    CHECK(cut.failure->message.find('\n') == std::string::npos);
    CHECK(cut.failure->message.find('\x1b') == std::string::npos);
    CHECK(cut.failure->message.ends_with("..."));

    window_request bad = year_2024();
    bad.from = "not-a-date";
    auto invalid = fetch_once(local_config(server), bad);
    CHECK(invalid.kind() == failure_kind::request_rejected);
    CHECK(invalid.failure->message.find("The request is invalid") != std::string::npos);
}

TEST_CASE("401 and 403 park the customer; 404 says the endpoint is missing") {
    fake_vitec_server server({"--customers", "M1,M3", "--password", "M1=own-secret", "--forbidden", "M3",
                              "--default-password", "pw"});
    secret wrong("wrong-password"), right("own-secret");
    auto unauthorized = fetch_once(local_config(server), year_2024("M1", &wrong));
    CHECK(unauthorized.kind() == failure_kind::credentials_rejected);
    CHECK(unauthorized.http_status == 401);
    CHECK(parks_customer(*unauthorized.kind()));
    CHECK(fetch_once(local_config(server), year_2024("M1", &right)).ok());

    auto forbidden = fetch_once(local_config(server), year_2024("M3"));
    CHECK(forbidden.kind() == failure_kind::access_denied);
    CHECK(parks_customer(*forbidden.kind()));

    auto config = local_config(server);
    config.base_url = parse_vitec_url(server.url() + "/wrong-prefix/", false);
    auto missing = fetch_once(config, year_2024());
    CHECK(missing.kind() == failure_kind::endpoint_missing);
    CHECK_FALSE(is_retryable(*missing.kind()));
    auto by_path = server.stats().at("by_path").as_object();
    CHECK(by_path.contains("/wrong-prefix/Report/Task/M1/Comeback"));
}

TEST_CASE("429 and 503 are throttled and carry the capped Retry-After") {
    fake_vitec_server server({"--default-password", "pw"});
    auto config = local_config(server);
    config.retry.max_retry_after = 5s;
    auto seconds = fetch_with_fault(server, "status=429,retry-after=3", config);
    CHECK(seconds.kind() == failure_kind::throttled);
    CHECK(seconds.failure->retry_after == std::chrono::milliseconds(3000));
    auto capped = fetch_with_fault(server, "status=503,retry-after=86400", config);
    CHECK(capped.kind() == failure_kind::throttled);
    CHECK(capped.failure->retry_after == std::chrono::milliseconds(5000));
    auto none = fetch_with_fault(server, "status=503", config);
    CHECK(none.kind() == failure_kind::throttled);
    CHECK_FALSE(none.failure->retry_after);
}

TEST_CASE("other 5xx, resets, truncated bodies and timeouts are transient") {
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "2000"});
    auto config = local_config(server);
    auto server_error = fetch_with_fault(server, "status=500", config);
    CHECK(server_error.kind() == failure_kind::transient);
    CHECK(server_error.http_status == 500);
    auto reset = fetch_with_fault(server, "reset", config);
    CHECK(reset.kind() == failure_kind::transient);
    CHECK(reset.http_status == 0);
    auto truncated = fetch_with_fault(server, "truncate=5000", config);
    CHECK(truncated.kind() == failure_kind::transient);
    CHECK(truncated.http_status == 200);
    CHECK(truncated.failure->message.find("closed before the response was complete") != std::string::npos);

    config.request_timeout = 300ms;
    auto started = std::chrono::steady_clock::now();
    auto slow_head = fetch_with_fault(server, "latency=3000", config);
    CHECK(slow_head.kind() == failure_kind::transient);
    CHECK(slow_head.failure->message.find("timed out") != std::string::npos);
    auto stalled_body = fetch_with_fault(server, "stall=3000", config);
    CHECK(stalled_body.kind() == failure_kind::transient);
    CHECK(stalled_body.failure->message.find("timed out") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
}

TEST_CASE("nothing listening is transient") {
    vitec_config config;
    {
        fake_vitec_server gone({});
        config = local_config(gone);
    }
    auto result = fetch_once(config, year_2024());
    CHECK(result.kind() == failure_kind::transient);
    CHECK(result.failure->message.find("connect to 127.0.0.1") != std::string::npos);
}

TEST_CASE("a body over max_response_bytes is too large, naming the setting") {
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "500"});
    auto config = local_config(server);
    config.max_response_bytes = 10'000;
    auto result = fetch_once(config, year_2024());
    CHECK(result.kind() == failure_kind::response_too_large);
    CHECK(result.failure->message.find("max_response_bytes") != std::string::npos);
    CHECK(result.bytes <= 10'000);
}

TEST_CASE("a customer id like ../x?y stays one path segment") {
    fake_vitec_server server({"--customers", "../x?y", "--default-password", "pw"});
    net::io_context io;
    vitec_client client(io.get_executor(), local_config(server));
    CHECK(client.target_for(year_2024("../x?y")) ==
          "/Report/Task/..%2Fx%3Fy/Comeback?from=2024-01-01T00:00:00&to=2025-01-01T00:00:00&date=Occurrence");
    auto state = std::make_shared<json_sink_state>();
    REQUIRE(run(io, client.fetch(year_2024("../x?y"), json_sink(state))).ok());
    CHECK(boost::json::parse(state->body).as_array().at(0).as_object().at("id").as_string().starts_with("../x?y-"));
    CHECK(server.stats().at("by_path").as_object().contains("/Report/Task/..%2Fx%3Fy/Comeback"));
    CHECK(run(io, client.fetch(year_2024(".."), json_sink(state))).kind() == failure_kind::request_rejected);
}

TEST_CASE("keep-alive connections are reused between requests") {
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "50"});
    net::io_context io;
    vitec_client client(io.get_executor(), local_config(server));
    for (int i = 0; i < 5; ++i) REQUIRE(run(io, client.fetch(year_2024(), json_sink(std::make_shared<json_sink_state>()))).ok());
    CHECK(client.connections_opened() == 1);
    CHECK(server.stats().at("connections").as_int64() == 1);
    // An error answer with a body read whole keeps the connection too.
    server.control("/_control/fault?count=1&spec=status=500");
    CHECK(run(io, client.fetch(year_2024(), json_sink(std::make_shared<json_sink_state>()))).kind() == failure_kind::transient);
    CHECK(run(io, client.fetch(year_2024(), json_sink(std::make_shared<json_sink_state>()))).ok());
    CHECK(client.connections_opened() == 1);
}

TEST_CASE("a password planted in every error path never shows in messages or logs") {
    const std::string planted = "PLANTED-Secret-4711";
    fake_vitec_server server({"--password", "M1=" + planted, "--rows-per-customer", "2000"});
    std::ostringstream log;
    auto logger = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    logger->set_level(spdlog::level::trace);
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(logger);

    secret password(planted);
    auto config = local_config(server);
    config.request_timeout = 300ms;
    std::vector<std::string> messages;
    for (std::string spec : {"status=400,echo-auth", "status=500,echo-auth", "status=503,echo-auth",
                             "status=429,echo-auth", "html", "object", "invalid-json", "truncate=100",
                             "reset", "latency=2000", "stall=2000"}) {
        auto result = fetch_with_fault(server, spec, config, year_2024("M1", &password));
        INFO(spec);
        REQUIRE_FALSE(result.ok());
        messages.push_back(result.failure->message);
    }
    secret wrong(planted + "-wrong");
    messages.push_back(fetch_once(config, year_2024("M1", &wrong)).failure->message);
    config.base_url = parse_vitec_url("http://127.0.0.1:1", false);
    messages.push_back(fetch_once(config, year_2024("M1", &password)).failure->message);
    spdlog::set_default_logger(previous);

    // The echoed Authorization header was scrubbed, not merely absent.
    CHECK(messages[0].find(secret::redacted) != std::string::npos);
    const std::string token_start = "c3luYzpQTEFOVEVE";  // Base64 of "sync:PLANTED"
    for (const auto& message : messages) {
        INFO(message);
        CHECK(message.find(planted) == std::string::npos);
        CHECK(message.find(token_start) == std::string::npos);
        CHECK(message.find("PLANTED") == std::string::npos);
    }
    CHECK(log.str().find("vitec_fetch_done") != std::string::npos);
    CHECK(log.str().find("PLANTED") == std::string::npos);
    CHECK(log.str().find(token_start) == std::string::npos);
}

TEST_CASE("a 200 MiB response passes through with bounded memory") {
    // About 340 bytes a row: 700,000 rows in one year make over 200 MiB.
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "700000"});
    auto config = local_config(server);
    config.request_timeout = 300s;
    const long before = current_rss_kib();
    long peak = before;
    std::uint64_t seen = 0;
    char first = 0, last = 0;
    body_sink sink = [&](std::string_view chunk) -> net::awaitable<void> {
        if (seen == 0) first = chunk.front();
        last = chunk.back();
        seen += chunk.size();
        if (seen % (8 << 20) < chunk.size()) peak = std::max(peak, current_rss_kib());
        co_return;
    };
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    auto result = run(io, client.fetch(year_2024(), sink));
    REQUIRE(result.ok());
    CHECK(result.bytes >= 200ull << 20);
    CHECK(result.bytes == seen);
    CHECK(first == '[');
    CHECK(last == ']');
    CHECK(peak - before < 32 * 1024);              // the client held no more than a few chunks
    CHECK(server.peak_rss_kib() < 64 * 1024);      // and the server generated rows on the fly
}

TEST_CASE("CA certificates that cannot be loaded are refused naming the file") {
    // The URL rules are etl/config's (config_test); what a CA file holds is
    // only known once the client reads it.
    net::io_context io;
    vitec_config config;
    CHECK_NOTHROW(vitec_client(io.get_executor(), config));
    config.ca_file = "/nonexistent/ca.pem";
    CHECK_THROWS_WITH(vitec_client(io.get_executor(), config), Catch::Contains("/nonexistent/ca.pem"));
    const auto not_pem = test::fixture_path("config/secrets/vitec-password").string();
    config.ca_file = not_pem;
    CHECK_THROWS_WITH(vitec_client(io.get_executor(), config),
                      Catch::Contains("vitec.ca_file") && Catch::Contains(not_pem));
    // Plain http loads no certificates at all.
    config.base_url = parse_vitec_url("http://localhost:8080", false);
    CHECK_NOTHROW(vitec_client(io.get_executor(), config));
}

namespace {

// A sink with room: every chunk must arrive in place at the front of the
// room last offered (no copy), and the room moves on past it.
struct roomy_sink {
    std::string store = std::string(8 * 1024 * 1024, '\0');
    std::size_t used = 0;
    std::size_t offered = 0;
    std::size_t in_place = 0;
    std::size_t copied = 0;
    std::size_t copied_bytes = 0;

    body_room room() {
        return [this](std::size_t wanted) {
            offered = std::min(wanted, store.size() - used);
            return std::span<char>(store.data() + used, offered);
        };
    }
    body_sink sink() {
        return [this](std::string_view chunk) -> net::awaitable<void> {
            if (offered > 0 && chunk.data() == store.data() + used && chunk.size() <= offered) {
                ++in_place;
            } else {
                ++copied;
                copied_bytes += chunk.size();
                std::memcpy(store.data() + used, chunk.data(), chunk.size());
            }
            used += chunk.size();
            offered = 0;
            co_return;
        };
    }
    std::string_view body() const { return {store.data(), used}; }
};

fetch_result fetch_into(const fake_vitec_server& server, const vitec_config& config, roomy_sink& into,
                        const std::string& fault) {
    if (!fault.empty()) server.control("/_control/fault?count=1&spec=" + fault);
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    return run(io, client.fetch(year_2024(), into.sink(), into.room()));
}

}  // namespace

TEST_CASE("a body read into the sink's room arrives whole and in place, chunked or of announced length") {
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "20000"});
    const auto config = local_config(server);
    auto reference = std::make_shared<json_sink_state>();
    REQUIRE(fetch_once(config, year_2024(), reference).ok());
    REQUIRE(reference->body.size() > 1024 * 1024);  // many reads

    for (const std::string fault : {"none", "content-length"}) {
        INFO("fault " << fault);
        roomy_sink into;
        const fetch_result fetched = fetch_into(server, config, into, fault == "none" ? "" : fault);
        REQUIRE(fetched.ok());
        CHECK(fetched.bytes == reference->body.size());
        CHECK(into.body() == reference->body);
        // Beast's parser writes a chunked body into the room, a 64 KiB read
        // at a time; one of known length is read from the socket into it,
        // in reads of up to 1 MiB, as many as the socket's pace makes them.
        // Only what came with the response head (at most one read of 64
        // KiB) is handed over from elsewhere.
        if (fault == "none") CHECK(into.in_place > 10);
        CHECK(into.in_place >= 1);
        CHECK(into.copied <= 1);
        CHECK(into.copied_bytes <= 64 * 1024);
    }
}

TEST_CASE("a body of announced length cut short is transient, as a chunked one is") {
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "2000"});
    const auto config = local_config(server);
    roomy_sink into;
    const fetch_result cut = fetch_into(server, config, into, "content-length,truncate=5000");
    CHECK(cut.kind() == failure_kind::transient);
    CHECK(cut.http_status == 200);
    REQUIRE(cut.failure);
    CHECK(cut.failure->message.find("closed before the response was complete") != std::string::npos);
    CHECK(into.used <= 5000);  // what came, and nothing after it
}
