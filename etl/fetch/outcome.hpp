#pragma once
// Every outcome of one request for one window is a failure of one kind from
// the one list (model/failure.hpp), or rows; the HTTP and network part of that
// classification is decided here, in one place (classify_* in outcome.cpp).
// Every function below is pure.

#include "model/failure.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace comeback {

class basic_credentials;

// Fixed ceilings on what a server sends, besides the configured
// vitec.max_response_bytes and vitec.max_field_bytes (docs/configuration.md,
// "Limits on what a server sends"). Real responses stay far below them.
inline constexpr std::size_t response_head_limit = 32 * 1024;  // status line and headers
// The connection's read buffer: a chunk header with its extensions, and the
// trailer section, must fit in it whole.
inline constexpr std::size_t read_buffer_limit = 64 * 1024;
inline constexpr std::size_t error_body_limit = 16 * 1024;     // of a non-200 body, read for its message

// What the client learned from a response's head and (for errors) the first
// bytes of its body. Only fields the classification looks at.
struct response_facts {
    int status = 0;
    std::string_view content_type;                 // the Content-Type header, as sent
    std::optional<std::string_view> retry_after;   // the Retry-After header, when sent
    std::string_view error_body;                   // up to error_body_limit of a non-200 body
    bool error_body_cut = false;                   // the body went on after error_body
    // The request's credentials: every secret form in the server's text is
    // redacted before it is cut or shown. Null: no secret to look for.
    const basic_credentials* credentials = nullptr;
};

// The failure a response stands for, or nullopt when it is a 200 with a JSON
// content type (the body is then read as rows). `max_retry_after` caps a
// server's Retry-After; `now` turns an HTTP-date Retry-After into a delay.
std::optional<failure> classify_response(const response_facts& facts,
                                               std::chrono::milliseconds max_retry_after,
                                               std::chrono::system_clock::time_point now);

// A failure below HTTP: resolve, connect, TLS, write or read. `phase` names the
// step ("connect", "tls handshake", "write", "read header", "read body") and
// `where` the host, for the message. A peer that broke HTTP's framing or one
// of the fixed ceilings (Beast's parse errors) is a protocol_violation; the
// network, a timeout or a connection closed early is transient.
failure classify_transport_error(const boost::system::error_code& error,
                                       std::string_view phase, std::string_view where);

// A body over vitec.max_response_bytes (`limit`), announced by Content-Length
// (`announced`) or counted as it arrived. Not retried.
failure classify_response_too_large(std::string_view where, std::uint64_t limit,
                                    std::optional<std::uint64_t> announced);

// A TLS handshake that failed because the server's certificate did not verify
// (`reason`: OpenSSL's words for it, e.g. "unable to get local issuer
// certificate" or "hostname mismatch"). Not retried: the fix is a CA file or
// the base URL's host name.
failure classify_tls_rejected(std::string_view where, std::string_view reason);

// A 200 whose body turned out not to be a usable JSON array (the parser said
// so, or the body did not start with '['): broken_response. With kind
// field_too_large (the parser's response_error::kind()), one value was over
// vitec.max_field_bytes, which the message names. `reason` must hold no
// secret: it is cut here.
failure classify_broken_body(std::string_view reason,
                             failure_kind kind = failure_kind::broken_response);

// Reads a Retry-After value: delay-seconds or an HTTP-date (IMF-fixdate,
// RFC 850 or asctime form). A date in the past gives zero. nullopt when the
// text is neither. Not capped here.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// Makes server-provided text safe to show: control characters become spaces,
// invalid UTF-8 becomes '?', and the text is cut at `max_bytes` (on a UTF-8
// boundary) with "..." appended. A secret::redacted marker that starts within
// `max_bytes` is kept whole, so the result may be that much longer.
std::string sanitize_message(std::string_view text, std::size_t max_bytes = 300);

// The `message` (any letter case) of a JSON object body, sanitized; otherwise
// the sanitized start of the body itself; empty for an empty body. With
// `credentials`, secrets are redacted first, in the body as sent and in the
// decoded message; `cut`: the body went on after `body`.
std::string error_body_message(std::string_view body, const basic_credentials* credentials = nullptr,
                               bool cut = false);

}  // namespace comeback
