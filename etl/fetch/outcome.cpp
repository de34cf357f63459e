#include "fetch/outcome.hpp"

#include "config/secret.hpp"
#include "fetch/credentials.hpp"
#include "model/text.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <date/date.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

namespace comeback {

namespace {

std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    return text;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// "application/json", "application/json; charset=utf-8", "application/problem+json".
bool is_json_content_type(std::string_view content_type) {
    auto media = trim(content_type.substr(0, content_type.find(';')));
    if (iequals(media, "application/json") || iequals(media, "text/json")) return true;
    return media.size() > 5 && iequals(media.substr(media.size() - 5), "+json");
}

failure make_failure(failure_kind kind, int status, std::string message) {
    failure made;
    made.kind = kind;
    made.http_status = status;
    made.message = std::move(message);
    return made;
}

std::string with_detail(std::string head, const response_facts& facts) {
    auto detail = error_body_message(facts.error_body, facts.credentials, facts.error_body_cut);
    if (!detail.empty()) head += ": " + detail;
    return head;
}

// Server text made fit for a message: secrets redacted before it is cut.
std::string server_text(std::string_view text, std::size_t max_bytes, const basic_credentials* credentials,
                        bool cut = false) {
    return credentials ? credentials->shown(text, max_bytes, cut) : sanitize_message(text, max_bytes);
}

// Every string in `value` redacted, keys included, so a serialized value
// holds no secret whatever escaping serialization adds.
void redact_strings(boost::json::value& value, const basic_credentials& credentials) {
    if (value.is_string()) {
        std::string text(value.as_string());
        credentials.redact(text);
        value = text;
    } else if (value.is_array()) {
        for (auto& item : value.as_array()) redact_strings(item, credentials);
    } else if (value.is_object()) {
        boost::json::object redacted;
        for (auto& [key, item] : value.as_object()) {
            std::string name(key);
            credentials.redact(name);
            redact_strings(item, credentials);
            redacted[name] = std::move(item);
        }
        value = std::move(redacted);
    }
}

// The parse errors of Beast's HTTP parser: the peer broke the protocol or a
// ceiling. The other errors of that category are the stream ending early.
bool is_protocol_error(const boost::system::error_code& error) {
    namespace http = boost::beast::http;
    if (error.category() != make_error_code(http::error::bad_version).category()) return false;
    return error != http::error::end_of_stream && error != http::error::partial_message &&
           error != http::error::need_more && error != http::error::need_buffer &&
           error != http::error::end_of_chunk && error != http::error::short_read &&
           error != http::error::stale_parser;
}

std::string format_kib(std::size_t bytes) { return std::to_string(bytes / 1024) + " KiB"; }

}  // namespace

std::string sanitize_message(std::string_view text, std::size_t max_bytes) {
    std::string out;
    const std::string_view marker = secret::redacted;
    out.reserve(std::min(text.size(), max_bytes) + marker.size() + 3);
    for (std::size_t i = 0; i < text.size();) {
        // A marker that starts within the limit is kept whole: "<red..." would
        // hide that a secret was there.
        if (text.compare(i, marker.size(), marker) == 0) {
            if (out.size() >= max_bytes) return out + "...";
            out.append(marker);
            i += marker.size();
            continue;
        }
        auto length = utf8_sequence_length(text, i);
        if (length == 0) {
            if (out.size() + 1 > max_bytes) return out + "...";
            out += '?';
            ++i;
            continue;
        }
        if (out.size() + length > max_bytes) return out + "...";
        auto c = static_cast<unsigned char>(text[i]);
        if (length == 1 && (c < 0x20 || c == 0x7F))
            out += ' ';
        else
            out.append(text.substr(i, length));
        i += length;
    }
    return out;
}

std::string error_body_message(std::string_view body, const basic_credentials* credentials, bool cut) {
    std::string text(body);
    // Before anything is decoded or cut: the body as the server sent it.
    if (credentials) credentials->redact(text, cut);
    const std::string_view trimmed = trim(text);
    if (trimmed.empty()) return {};
    boost::system::error_code error;
    auto value = boost::json::parse(trimmed, error);
    if (!error && value.is_object()) {
        for (auto& [key, field] : value.as_object()) {
            if (!iequals(key, "message")) continue;
            // Decoding may have turned an escaped secret back into its plain form.
            if (field.is_string()) return server_text(std::string_view(field.as_string()), 300, credentials);
            if (credentials) redact_strings(field, *credentials);
            return sanitize_message(boost::json::serialize(field));
        }
    }
    return sanitize_message(trimmed);
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
    value = trim(value);
    if (value.empty()) return std::nullopt;
    if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::uint64_t seconds = 0;
        auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        // A number too large to hold is a server asking for "a very long time".
        if (error == std::errc::result_out_of_range || seconds > 100'000'000) seconds = 100'000'000;
        return std::chrono::milliseconds(seconds * 1000);
    }
    // HTTP-date: the preferred IMF-fixdate, then the two obsolete forms RFC 9110 still accepts.
    // date::parse (3.0.1) converts the seconds it read into an integer even when it
    // read none, from an uninitialized long double: undefined behaviour. In every
    // form the seconds follow the time's second ':', so a digit must be there.
    const auto colon = value.find(':');
    const auto seconds_at = colon == std::string_view::npos ? colon : value.find(':', colon + 1);
    if (seconds_at == std::string_view::npos || seconds_at + 1 >= value.size() ||
        value[seconds_at + 1] < '0' || value[seconds_at + 1] > '9') {
        return std::nullopt;
    }
    for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                               "%a %b %d %H:%M:%S %Y"}) {
        std::istringstream in{std::string(value)};
        date::sys_seconds when;
        in >> date::parse(format, when);
        if (in.fail()) continue;
        // In milliseconds: the clock's nanoseconds cannot hold a date centuries
        // away (the year field reads up to 9999), and the difference would overflow.
        const auto delay = when - std::chrono::floor<std::chrono::milliseconds>(now);
        return std::max(std::chrono::milliseconds{delay}, std::chrono::milliseconds{0});
    }
    return std::nullopt;
}

std::optional<failure> classify_response(const response_facts& facts,
                                               std::chrono::milliseconds max_retry_after,
                                               std::chrono::system_clock::time_point now) {
    const int status = facts.status;
    const auto status_text = "HTTP " + std::to_string(status);
    if (status == 200) {
        if (is_json_content_type(facts.content_type)) return std::nullopt;
        auto shown = facts.content_type.empty() ? std::string("none")
                                                : server_text(facts.content_type, 100, facts.credentials);
        return make_failure(failure_kind::broken_response, status,
                            "HTTP 200 with content type " + shown + ", expected application/json");
    }
    if (status == 400)
        return make_failure(failure_kind::request_rejected, status,
                            with_detail("request rejected (HTTP 400)", facts));
    if (status == 401)
        return make_failure(failure_kind::credentials_rejected, status,
                            "credentials rejected (HTTP 401): check the user name and this "
                            "customer's password");
    if (status == 403)
        return make_failure(failure_kind::access_denied, status,
                            "no access to this customer's data (HTTP 403)");
    if (status == 404)
        return make_failure(failure_kind::endpoint_missing, status,
                            "endpoint not found (HTTP 404): check vitec.base_url");
    if (status == 429 || status == 503) {
        auto throttled = make_failure(failure_kind::throttled, status,
                                      with_detail("throttled (" + status_text + ")", facts));
        if (facts.retry_after) {
            if (auto delay = parse_retry_after(*facts.retry_after, now))
                throttled.retry_after = std::min(*delay, max_retry_after);
        }
        return throttled;
    }
    if (status >= 500 && status <= 599)
        return make_failure(failure_kind::transient, status,
                            with_detail("server error (" + status_text + ")", facts));
    // 1xx leftovers, 2xx other than 200, 3xx (redirects are not followed: the
    // endpoint never redirects, and following one would send the credentials
    // elsewhere) and the remaining 4xx: the request or the base URL is wrong.
    return make_failure(failure_kind::request_rejected, status,
                        with_detail("unexpected " + status_text, facts));
}

failure classify_transport_error(const boost::system::error_code& error,
                                       std::string_view phase, std::string_view where) {
    namespace http = boost::beast::http;
    if (error == http::error::header_limit || error == http::error::buffer_overflow) {
        const bool head = error == http::error::header_limit;
        return make_failure(failure_kind::protocol_violation, 0,
                            std::string(phase) + " " + std::string(where) + ": " +
                                (head ? "the response head (status line and headers) is over " +
                                            format_kib(response_head_limit)
                                      : "a chunk header (with its extensions) or the trailer "
                                        "section is over " + format_kib(read_buffer_limit)) +
                                ", a fixed ceiling no real response reaches");
    }
    if (is_protocol_error(error))
        return make_failure(failure_kind::protocol_violation, 0,
                            std::string(phase) + " " + std::string(where) +
                                ": the server broke HTTP framing (" +
                                sanitize_message(error.message(), 200) + ")");
    std::string what;
    if (error == boost::beast::error::timeout)
        what = "timed out (vitec.request_timeout is the limit)";
    else if (error == boost::beast::http::error::partial_message ||
             error == boost::asio::error::eof || error == boost::asio::ssl::error::stream_truncated)
        what = "connection closed before the response was complete";
    else if (error == boost::asio::error::connection_reset)
        what = "connection reset by the server";
    else
        what = sanitize_message(error.message(), 200);
    return make_failure(failure_kind::transient, 0,
                        std::string(phase) + " " + std::string(where) + ": " + what);
}

failure classify_tls_rejected(std::string_view where, std::string_view reason) {
    return make_failure(failure_kind::tls_rejected, 0,
                        "TLS handshake with " + std::string(where) +
                            ": certificate verify failed (" + sanitize_message(reason, 200) +
                            "): set vitec.ca_file to the CA that signed it, or use the host name "
                            "the certificate names");
}

failure classify_response_too_large(std::string_view where, std::uint64_t limit,
                                    std::optional<std::uint64_t> announced) {
    const std::string what = announced ? "announces a body of " + std::to_string(*announced) + " bytes"
                                       : "sent a body longer than that";
    return make_failure(failure_kind::response_too_large, 200,
                        "response too large: " + std::string(where) + " " + what +
                            ", over vitec.max_response_bytes (" + std::to_string(limit) +
                            " bytes); a shorter sync.window or a higher vitec.max_response_bytes "
                            "lets the window through");
}

failure classify_broken_body(std::string_view reason, failure_kind kind) {
    if (kind == failure_kind::field_too_large)
        return make_failure(kind, 200,
                            "value too large: " + sanitize_message(reason) +
                                "; vitec.max_field_bytes raises the limit");
    return make_failure(failure_kind::broken_response, 200,
                        "unusable response body: " + sanitize_message(reason));
}

}  // namespace comeback
