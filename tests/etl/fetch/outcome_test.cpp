// The classification table, pure: status and headers in, one kind out.

#include "fetch/outcome.hpp"
#include "model/text.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <catch2/catch.hpp>
#include <date/date.h>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

const auto now = date::sys_days{date::year{2024} / 5 / 1} + 12h;

std::optional<failure> classify(int status, std::string_view content_type = "application/json",
                                      std::optional<std::string_view> retry_after = std::nullopt,
                                      std::string_view body = {}) {
    return classify_response({status, content_type, retry_after, body}, 300s, now);
}

}  // namespace

TEST_CASE("each status lands in its kind") {
    CHECK_FALSE(classify(200));
    CHECK_FALSE(classify(200, "application/json; charset=utf-8"));
    CHECK(classify(200, "text/html")->kind == failure_kind::broken_response);
    CHECK(classify(200, "")->kind == failure_kind::broken_response);
    CHECK(classify(400)->kind == failure_kind::request_rejected);
    CHECK(classify(401)->kind == failure_kind::credentials_rejected);
    CHECK(classify(403)->kind == failure_kind::access_denied);
    CHECK(classify(404)->kind == failure_kind::endpoint_missing);
    CHECK(classify(429)->kind == failure_kind::throttled);
    CHECK(classify(503)->kind == failure_kind::throttled);
    CHECK(classify(500)->kind == failure_kind::transient);
    CHECK(classify(502)->kind == failure_kind::transient);
    CHECK(classify(504)->kind == failure_kind::transient);
    CHECK(classify(302)->kind == failure_kind::request_rejected);
    CHECK(classify(503)->http_status == 503);
}

TEST_CASE("only broken responses, throttling and transient failures are retried on the spot") {
    CHECK(is_retryable(failure_kind::broken_response));
    CHECK(is_retryable(failure_kind::throttled));
    CHECK(is_retryable(failure_kind::transient));
    CHECK_FALSE(is_retryable(failure_kind::request_rejected));
    CHECK_FALSE(is_retryable(failure_kind::credentials_rejected));
    CHECK_FALSE(is_retryable(failure_kind::access_denied));
    CHECK_FALSE(is_retryable(failure_kind::endpoint_missing));
    CHECK_FALSE(is_retryable(failure_kind::tls_rejected));
    CHECK_FALSE(parks_customer(failure_kind::tls_rejected));
    CHECK(to_string(failure_kind::tls_rejected) == "tls_rejected");
    CHECK(parks_customer(failure_kind::credentials_rejected));
    CHECK(parks_customer(failure_kind::access_denied));
    CHECK_FALSE(parks_customer(failure_kind::transient));
    CHECK(to_string(failure_kind::throttled) == "throttled");
}

TEST_CASE("Retry-After is read as seconds or an HTTP date, and capped") {
    CHECK(classify(429, "", "120")->retry_after == 120s);
    CHECK(classify(503, "", "Wed, 01 May 2024 12:00:30 GMT")->retry_after == 30s);
    CHECK(classify(503, "", "Wednesday, 01-May-24 12:01:00 GMT")->retry_after == 60s);
    CHECK(classify(503, "", "Wed May  1 12:00:10 2024")->retry_after == 10s);
    CHECK(classify(503, "", "Wed, 01 May 2024 11:00:00 GMT")->retry_after == 0s);  // in the past
    CHECK(classify(503, "", "999999")->retry_after == 300s);                       // capped
    CHECK(classify(503, "", "99999999999999999999999")->retry_after == 300s);
    CHECK_FALSE(classify(503, "", "soon")->retry_after);
    // Dates far from now, which do not fit the system clock's nanoseconds.
    CHECK(classify(503, "", "Fri, 31 Dec 9999 23:59:59 GMT")->retry_after == 300s);
    CHECK(classify(429, "", "Sun Nov  2 08:49:37 194")->retry_after == 0s);
    CHECK_FALSE(classify(503)->retry_after);
}

TEST_CASE("a 400 shows the body's message, cut and sanitized") {
    auto failure = classify(400, "application/json", std::nullopt, R"({"Message":"From is\nafter To"})");
    CHECK(failure->message == "request rejected (HTTP 400): From is after To");
    auto long_body = classify(400, "application/json", std::nullopt,
                              "{\"message\":\"" + std::string(1000, 'a') + "\"}");
    CHECK(long_body->message.size() < 360);
    CHECK(long_body->message.ends_with("..."));
    auto not_json = classify(400, "text/plain", std::nullopt, "plain words");
    CHECK(not_json->message == "request rejected (HTTP 400): plain words");
}

TEST_CASE("sanitizing keeps UTF-8 whole and drops control characters") {
    CHECK(sanitize_message("Åsa\tÖström\x01") == "Åsa Öström ");
    CHECK(sanitize_message("bad \xff byte") == "bad ? byte");
    CHECK(sanitize_message("åååå", 5) == "åå...");  // never half a character
    // Never half a redaction marker: one that starts within the limit stays whole.
    CHECK(sanitize_message("abc<redacted>def", 5) == "abc<redacted>...");
    CHECK(sanitize_message("abc<redacted>", 3) == "abc...");
    CHECK(error_body_message("") == "");
}

TEST_CASE("sanitizing turns every malformed UTF-8 sequence into '?', as the text rules define it") {
    // Shaped like UTF-8 but not well formed: an overlong 4-byte '/', an
    // overlong 2-byte NUL, a UTF-16 surrogate, a code point above U+10FFFF.
    CHECK(sanitize_message("a\xF0\x80\x80\xAF" "b") == "a????b");
    CHECK(sanitize_message("\xC0\x80") == "??");
    CHECK(sanitize_message("\xED\xA0\x80") == "???");
    CHECK(sanitize_message("\xF4\x90\x80\x80") == "????");
    const auto failure = classify(500, "text/plain", std::nullopt, "broken \xF0\x8F\x98\x80 body");
    CHECK(is_valid_utf8(failure->message));
}

TEST_CASE("transport errors are transient and say where they happened") {
    auto timeout = classify_transport_error(boost::beast::error::timeout, "read body from", "host:443");
    CHECK(timeout.kind == failure_kind::transient);
    CHECK(timeout.message == "read body from host:443: timed out (vitec.request_timeout is the limit)");
    namespace http = boost::beast::http;
    CHECK(classify_transport_error(http::error::partial_message, "read body from", "h").kind ==
          failure_kind::transient);
    CHECK(classify_transport_error(http::error::end_of_stream, "read response from", "h").kind ==
          failure_kind::transient);
    auto reset = classify_transport_error(boost::asio::error::connection_reset, "read response from", "h");
    CHECK(reset.message.find("reset") != std::string::npos);
    CHECK(classify_broken_body("truncated").kind == failure_kind::broken_response);
}

TEST_CASE("a peer breaking HTTP or a fixed ceiling is a protocol violation, not retried") {
    namespace http = boost::beast::http;
    auto head = classify_transport_error(http::error::header_limit, "read response from", "vitec:443");
    CHECK(head.kind == failure_kind::protocol_violation);
    CHECK(head.message == "read response from vitec:443: the response head (status line and headers) is over "
                          "32 KiB, a fixed ceiling no real response reaches");
    auto chunk = classify_transport_error(http::error::buffer_overflow, "read body from", "vitec:443");
    CHECK(chunk.kind == failure_kind::protocol_violation);
    CHECK(chunk.message.find("chunk header (with its extensions) or the trailer section is over 64 KiB") !=
          std::string::npos);
    for (auto error : {http::error::bad_chunk, http::error::bad_chunk_extension, http::error::bad_version,
                       http::error::bad_content_length, http::error::bad_field}) {
        auto failed = classify_transport_error(error, "read body from", "vitec:443");
        INFO(failed.message);
        CHECK(failed.kind == failure_kind::protocol_violation);
        CHECK(failed.message.find("broke HTTP framing") != std::string::npos);
    }
    CHECK(rule_of(failure_kind::protocol_violation) == retry_rule::next_cycle);
}

TEST_CASE("a body too large and a value too large name the setting that raises the limit") {
    auto announced = classify_response_too_large("vitec:443", 1024, 2147483648ull);
    CHECK(announced.kind == failure_kind::response_too_large);
    CHECK(announced.message.find("vitec:443 announces a body of 2147483648 bytes, over "
                                 "vitec.max_response_bytes (1024 bytes)") != std::string::npos);
    auto counted = classify_response_too_large("vitec:443", 1024, std::nullopt);
    CHECK(counted.message.find("sent a body longer than that, over vitec.max_response_bytes") != std::string::npos);
    auto field = classify_broken_body("contact.name in element 3 is too long", failure_kind::field_too_large);
    CHECK(field.kind == failure_kind::field_too_large);
    CHECK(field.message ==
          "value too large: contact.name in element 3 is too long; vitec.max_field_bytes raises the limit");
    CHECK(classify_broken_body("x").kind == failure_kind::broken_response);
    CHECK_FALSE(is_retryable(failure_kind::response_too_large));
    CHECK_FALSE(is_retryable(failure_kind::field_too_large));
}
