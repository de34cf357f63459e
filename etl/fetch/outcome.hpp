#pragma once
// Every outcome of one request for one window is a failure of one kind from
// the one list (model/failure.hpp), or rows; the HTTP and network part of that
// classification is decided here, in one place (classify_* in outcome.cpp).
// Every function below is pure.

#include "model/failure.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace comeback {

// What the client learned from a response's head and (for errors) the first
// bytes of its body. Only fields the classification looks at.
struct response_facts {
    int status = 0;
    std::string_view content_type;                 // the Content-Type header, as sent
    std::optional<std::string_view> retry_after;   // the Retry-After header, when sent
    std::string_view error_body;                   // up to a few KiB of a non-200 body
};

// The failure a response stands for, or nullopt when it is a 200 with a JSON
// content type (the body is then read as rows). `max_retry_after` caps a
// server's Retry-After; `now` turns an HTTP-date Retry-After into a delay.
std::optional<failure> classify_response(const response_facts& facts,
                                               std::chrono::milliseconds max_retry_after,
                                               std::chrono::system_clock::time_point now);

// A failure below HTTP: resolve, connect, TLS, write or read. `phase` names the
// step ("connect", "tls handshake", "write", "read header", "read body") and
// `where` the host, for the message.
failure classify_transport_error(const boost::system::error_code& error,
                                       std::string_view phase, std::string_view where);

// A TLS handshake that failed because the server's certificate did not verify
// (`reason`: OpenSSL's words for it, e.g. "unable to get local issuer
// certificate" or "hostname mismatch"). Not retried: the fix is a CA file or
// the base URL's host name.
failure classify_tls_rejected(std::string_view where, std::string_view reason);

// A 200 whose body turned out not to be a usable JSON array (the parser said
// so, the body did not start with '[', or it exceeded max_response_bytes).
failure classify_broken_body(std::string_view reason);

// Reads a Retry-After value: delay-seconds or an HTTP-date (IMF-fixdate,
// RFC 850 or asctime form). A date in the past gives zero. nullopt when the
// text is neither. Not capped here.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// Makes server-provided text safe to show: control characters become spaces,
// invalid UTF-8 becomes '?', and the text is cut at `max_bytes` (on a UTF-8
// boundary) with "..." appended.
std::string sanitize_message(std::string_view text, std::size_t max_bytes = 300);

// The `message` (any letter case) of a JSON object body, sanitized; otherwise
// the sanitized start of the body itself; empty for an empty body.
std::string error_body_message(std::string_view body);

}  // namespace comeback
