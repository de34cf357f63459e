#pragma once
// Every outcome of one request for one window lands in exactly one of these
// kinds, decided in one place (classify_* in outcome.cpp). Whether a kind is
// retried is a property of the kind, not of the caller.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace comeback {

enum class fetch_kind {
    rows,                  // 200 with a JSON array body: the window can be loaded
    broken_response,       // 200 with another content type, a non-array body, truncated JSON
    request_rejected,      // 400: the request itself is wrong; retrying will not help
    credentials_rejected,  // 401: wrong user name or password for this customer
    access_denied,         // 403: no access to this customer's data
    endpoint_missing,      // 404
    throttled,             // 429 or 503: honour Retry-After
    transient,             // other 5xx, timeouts, resets, truncated bodies
};

std::string_view to_string(fetch_kind kind);

// Retried on the spot (with back-off) within one window's attempts.
bool is_retryable(fetch_kind kind);
// Stops work on the customer for the long auth back-off; other customers go on.
bool parks_customer(fetch_kind kind);

struct fetch_failure {
    fetch_kind kind = fetch_kind::transient;
    int http_status = 0;  // 0 when no response was read
    std::string message;  // for operators: cut, sanitized, never a secret
    std::optional<std::chrono::milliseconds> retry_after;  // from the server, capped
};

}  // namespace comeback
