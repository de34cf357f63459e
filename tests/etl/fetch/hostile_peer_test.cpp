// The client against a hostile server (tests/support/hostile_vitec.hpp): every
// buffer has a ceiling and every wait a deadline, whatever the peer sends. For
// each way of misbehaving the fetch fails with the right kind, within
// request_timeout plus a margin (a bound on a wait, not a speed measurement),
// with the peak memory of this process under 64 MiB, and no message or log
// line holds any piece of the credentials.

#include "fetch/vitec_client.hpp"

#include "fake_vitec_server.hpp"
#include "parse/response_parser.hpp"
#include "support/hostile_vitec.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <date/tz.h>
#include <openssl/evp.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;
namespace net = boost::asio;

namespace {

const std::string username = "sync";
const std::string password = "Hostile-Pa55word/+x";

std::string base64(std::string_view text) {
    std::string out(4 * ((text.size() + 2) / 3), '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// Any piece of the credentials a message could leak: the password, and every
// piece of four bytes or more of the Base64 token.
std::optional<std::string> secret_piece_in(std::string_view text) {
    if (text.find(password) != std::string_view::npos) return password;
    const std::string token = base64(username + ":" + password);
    for (std::size_t length = 4; length <= token.size(); ++length)
        for (std::size_t at = 0; at + length <= token.size(); ++at)
            if (text.find(token.substr(at, length)) != std::string_view::npos) return token.substr(at, length);
    return std::nullopt;
}

// The peak resident memory since the last reset_peak_rss(), in KiB.
long peak_rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

void reset_peak_rss() {
    // "5" resets VmHWM to the current resident size (Linux 4.0 and later).
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.close();
    REQUIRE(clear.good());
}

vitec_config hostile_config(const hostile_vitec& server) {
    vitec_config config;
    config.base_url = parse_vitec_url(server.url(), false);
    config.username = username;
    config.request_timeout = 2s;
    config.max_requests_per_second = 1000;
    return config;
}

struct observed {
    fetch_result result;
    std::chrono::steady_clock::duration took{};
    long peak_kib = 0;
    std::string log;
};

// One fetch through the real response parser, as a window does it, with the
// process's peak memory and the client's log lines captured.
observed fetch_from(const vitec_config& config, const body_sink* sink_override = nullptr) {
    std::ostringstream log;
    auto logger = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    logger->set_level(spdlog::level::trace);
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(logger);

    parser_options options;
    options.api_zone = date::locate_zone("Europe/Stockholm");
    options.max_field_bytes = static_cast<std::size_t>(config.max_field_bytes);
    response_parser parser(options, [](row_batch&&) {});
    const body_sink parse = [&](std::string_view chunk) -> net::awaitable<void> {
        parser.feed(chunk);
        co_return;
    };
    const secret customer_password(password);
    const window_request request{"M1", &customer_password, "2024-01-01T00:00:00", "2024-01-08T00:00:00",
                                 "Occurrence"};

    observed seen;
    reset_peak_rss();
    const auto started = std::chrono::steady_clock::now();
    {
        net::io_context io;
        vitec_client client(io.get_executor(), config);
        seen.result = run(io, client.fetch(request, sink_override ? *sink_override : parse));
    }
    seen.took = std::chrono::steady_clock::now() - started;
    seen.peak_kib = peak_rss_kib();
    spdlog::set_default_logger(previous);
    seen.log = log.str();
    return seen;
}

void check_bounded_and_secret_free(const observed& seen, const vitec_config& config) {
    REQUIRE_FALSE(seen.result.ok());
    INFO("message: " << seen.result.failure->message);
    CHECK(seen.took < config.request_timeout + 5s);
    CHECK(seen.peak_kib < 64 * 1024);
    CHECK(secret_piece_in(seen.result.failure->message) == std::nullopt);
    CHECK(secret_piece_in(seen.log) == std::nullopt);
    CHECK(seen.log.find("vitec_fetch_done") != std::string::npos);  // the log was captured
}

}  // namespace

TEST_CASE("an endless chunk extension is a protocol violation, not a growing buffer") {
    hostile_vitec server({.mode = hostile_mode::endless_chunk_extension});
    const auto config = hostile_config(server);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::protocol_violation);
    CHECK_THAT(seen.result.failure->message, Catch::Contains("127.0.0.1") && Catch::Contains("chunk header") &&
                                                 Catch::Contains("64 KiB"));
    CHECK_FALSE(is_retryable(failure_kind::protocol_violation));
}

TEST_CASE("an endless trailer is a protocol violation") {
    hostile_vitec server({.mode = hostile_mode::endless_trailer});
    const auto config = hostile_config(server);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::protocol_violation);
    CHECK_THAT(seen.result.failure->message, Catch::Contains("trailer"));
}

TEST_CASE("an endless header is a protocol violation naming the head's ceiling") {
    hostile_vitec server({.mode = hostile_mode::endless_header});
    const auto config = hostile_config(server);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::protocol_violation);
    CHECK(seen.result.http_status == 0);
    CHECK_THAT(seen.result.failure->message, Catch::Contains("response head") && Catch::Contains("32 KiB"));
}

TEST_CASE("a 2 GiB Content-Length is refused before the body, not retried, naming the setting") {
    hostile_vitec server({.mode = hostile_mode::announced_2gib});
    const auto config = hostile_config(server);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::response_too_large);
    CHECK(seen.result.bytes == 0);
    CHECK_THAT(seen.result.failure->message,
               Catch::Contains("2147483648") && Catch::Contains("vitec.max_response_bytes"));
    CHECK_FALSE(is_retryable(failure_kind::response_too_large));
}

TEST_CASE("an endless chunked body stops at max_response_bytes and is not retried") {
    hostile_vitec server({.mode = hostile_mode::endless_chunked_body});
    auto config = hostile_config(server);
    config.max_response_bytes = 8 << 20;
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::response_too_large);
    CHECK(seen.result.bytes <= config.max_response_bytes);
    CHECK(seen.result.bytes > config.max_response_bytes / 2);
    CHECK_THAT(seen.result.failure->message, Catch::Contains("vitec.max_response_bytes (8388608 bytes)"));
}

TEST_CASE("one byte a second is cut off at request_timeout") {
    hostile_vitec server({.mode = hostile_mode::one_byte_per_second});
    const auto config = hostile_config(server);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::transient);
    CHECK_THAT(seen.result.failure->message, Catch::Contains("timed out") && Catch::Contains("vitec.request_timeout"));
}

TEST_CASE("a 256 MiB string fails the window as field_too_large, holding at most max_field_bytes") {
    hostile_vitec server({.mode = hostile_mode::huge_string});
    const auto config = hostile_config(server);
    REQUIRE(config.max_field_bytes == 1 << 20);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::field_too_large);
    CHECK(seen.result.bytes < 4 << 20);  // the client stopped reading soon after the limit
    CHECK_THAT(seen.result.failure->message,
               Catch::Contains("contact.name") && Catch::Contains("vitec.max_field_bytes"));
    CHECK_FALSE(is_retryable(failure_kind::field_too_large));
}

TEST_CASE("an Authorization header echoed after padding leaves no piece of the secret in the message") {
    // The padding puts the Base64 token across the 300-byte cut of the message.
    for (std::size_t padding : {250, 270, 280, 290, 295}) {
        for (auto mode : {hostile_mode::echo_authorization, hostile_mode::echo_authorization_text}) {
            hostile_vitec server({.mode = mode, .padding = padding});
            const auto config = hostile_config(server);
            const observed seen = fetch_from(config);
            INFO("padding " << padding);
            REQUIRE(server.last_authorization() == "Basic " + base64(username + ":" + password));
            check_bounded_and_secret_free(seen, config);
            CHECK(seen.result.kind() == failure_kind::request_rejected);
            CHECK(seen.result.http_status == 400);
            // A marker the cut falls into is shown whole: the reader sees a secret was there.
            const std::size_t token_at =
                padding + (mode == hostile_mode::echo_authorization ? std::string_view(" received Basic ").size()
                                                                    : std::string_view("Authorization: Basic ").size());
            if (token_at < 300) CHECK_THAT(seen.result.failure->message, Catch::Contains("<redacted>"));
        }
    }
    // Across the 16 KiB of an error body the client reads.
    for (std::size_t padding : {error_body_limit - 30, error_body_limit - 20, error_body_limit - 10}) {
        hostile_vitec server({.mode = hostile_mode::echo_authorization_text, .padding = padding});
        const auto config = hostile_config(server);
        const observed seen = fetch_from(config);
        INFO("padding " << padding);
        check_bounded_and_secret_free(seen, config);
        CHECK(seen.result.kind() == failure_kind::request_rejected);
    }
}

TEST_CASE("time the loader holds the body back moves the deadline, but never past twice request_timeout") {
    hostile_vitec server({.mode = hostile_mode::endless_chunked_body});
    auto config = hostile_config(server);
    config.request_timeout = 1s;
    config.max_response_bytes = 64 << 20;
    // A slow consumer: without the ceiling the fetch would go on until 64 MiB
    // (about 300 s of this sink) and fail as response_too_large.
    const body_sink slow = [](std::string_view) -> net::awaitable<void> {
        net::steady_timer pause(co_await net::this_coro::executor, 250ms);
        co_await pause.async_wait(net::use_awaitable);
    };
    const observed seen = fetch_from(config, &slow);
    REQUIRE_FALSE(seen.result.ok());
    INFO(seen.result.failure->message);
    CHECK(seen.result.kind() == failure_kind::transient);
    CHECK_THAT(seen.result.failure->message, Catch::Contains("twice vitec.request_timeout"));
    CHECK(seen.took < 2 * config.request_timeout + 5s);
}

TEST_CASE("a body sent one byte a second is cut off at request_timeout like a slow head") {
    hostile_vitec server({.mode = hostile_mode::slow_body});
    const auto config = hostile_config(server);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::transient);
    CHECK(seen.result.http_status == 200);
    CHECK_THAT(seen.result.failure->message, Catch::Contains("read body from 127.0.0.1") &&
                                                 Catch::Contains("timed out (vitec.request_timeout is the limit)"));
}

TEST_CASE("malformed HTTP is a protocol violation naming what broke") {
    for (auto mode : {hostile_mode::malformed_status, hostile_mode::malformed_chunk}) {
        hostile_vitec server({.mode = mode});
        const auto config = hostile_config(server);
        const observed seen = fetch_from(config);
        check_bounded_and_secret_free(seen, config);
        CHECK(seen.result.kind() == failure_kind::protocol_violation);
        CHECK_THAT(seen.result.failure->message,
                   Catch::Contains("127.0.0.1") && Catch::Contains("the server broke HTTP framing"));
    }
}

TEST_CASE("a redirect is refused, not followed, so the credentials go nowhere else") {
    hostile_vitec server({.mode = hostile_mode::redirect});
    const auto config = hostile_config(server);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::request_rejected);
    CHECK(seen.result.http_status == 302);
    CHECK_THAT(seen.result.failure->message, Catch::Contains("302"));
    CHECK(server.requests() == 1);
}

TEST_CASE("a 200 with an empty body is a broken response, without waiting for more") {
    hostile_vitec server({.mode = hostile_mode::empty_body});
    const auto config = hostile_config(server);
    const observed seen = fetch_from(config);
    check_bounded_and_secret_free(seen, config);
    CHECK(seen.result.kind() == failure_kind::broken_response);
    // The server keeps the connection open: had the client waited for more, it would time out.
    CHECK_THAT(seen.result.failure->message, Catch::Contains("the body is empty"));
}
