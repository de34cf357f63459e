// The classification of an HTTP answer on any status, headers and body: it
// never throws; every failure keeps its status and gets the kind the failure
// table in docs/operations.md gives it; a message is clean, bounded text
// whatever the server sent; Retry-After is never negative and never over its
// cap; and the text helpers keep their promises on their own.

#include "config/secret.hpp"
#include "fetch/outcome.hpp"
#include "model/text.hpp"
#include "support/check.hpp"
#include "support/split.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

using namespace comeback;
using std::chrono::milliseconds;

// What may reach a log line or the ledger: UTF-8, no control characters.
bool clean(std::string_view text) {
    return is_valid_utf8(text) && std::none_of(text.begin(), text.end(), [](char c) {
               const auto byte = static_cast<unsigned char>(c);
               return byte < 0x20 || byte == 0x7F;
           });
}

failure_kind expected_kind(int status) {
    switch (status) {
        case 200: return failure_kind::broken_response;  // a 200 that is a failure at all
        case 400: return failure_kind::request_rejected;
        case 401: return failure_kind::credentials_rejected;
        case 403: return failure_kind::access_denied;
        case 404: return failure_kind::endpoint_missing;
        case 429:
        case 503: return failure_kind::throttled;
    }
    return status >= 500 && status <= 599 ? failure_kind::transient : failure_kind::request_rejected;
}

void check_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
    const auto delay = parse_retry_after(value, now);
    if (!delay) return;
    FUZZ_CHECK(*delay >= milliseconds{0});
    constexpr std::string_view space = " \t\r\n\v\f";
    const auto first = value.find_first_not_of(space);
    if (first == std::string_view::npos) return;
    const std::string_view trimmed = value.substr(first, value.find_last_not_of(space) - first + 1);
    if (std::all_of(trimmed.begin(), trimmed.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        // Delay-seconds, held at 100,000,000 s.
        const std::string_view significant =
            trimmed.substr(std::min(trimmed.find_first_not_of('0'), trimmed.size()));
        const bool large =
            significant.size() > 9 || (significant.size() == 9 && significant > "100000000");
        const std::uint64_t seconds =
            large ? 100'000'000 : std::stoull("0" + std::string(significant));
        FUZZ_CHECK(*delay == milliseconds(seconds * 1000));
    }
}

// The longest text shown for a limit of max_bytes: a redaction marker that
// starts within the limit is kept whole, so the text may pass the limit by
// the marker less its first byte, then "...".
std::size_t shown_at_most(std::size_t max_bytes) {
    return max_bytes + std::string_view(secret::redacted).size() - 1 + 3;
}

void check_sanitize(std::string_view text, std::size_t max_bytes) {
    const std::string shown = sanitize_message(text, max_bytes);
    FUZZ_CHECK(clean(shown));
    FUZZ_CHECK(shown.size() <= shown_at_most(max_bytes));
    // Clean text that fits is shown as it is.
    if (clean(text) && text.size() <= max_bytes) FUZZ_CHECK(shown == text);
}

// The input reads like a response head: a status line with the number only,
// header lines (Content-Type and Retry-After are used, any letter case), an
// empty line, the body. What the input cannot steer (the cap on Retry-After,
// the clock, a message's size limit) follows from its digest.
struct answer {
    int status = 0;
    std::string_view content_type;
    std::optional<std::string_view> retry_after;
    std::string_view body;
};

bool named(std::string_view line, std::string_view name) {
    return line.size() > name.size() && line[name.size()] == ':' &&
           std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           });
}

answer read_answer(std::string_view text) {
    answer out;
    auto next_line = [&text] {
        const std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return line;
    };
    const std::string_view status = next_line();
    std::from_chars(status.data(), status.data() + status.size(), out.status);
    out.status = std::clamp(out.status, 0, 999);
    while (!text.empty()) {
        const std::string_view line = next_line();
        if (line.empty()) break;
        auto value = [&line](std::size_t name_size) {
            std::string_view v = line.substr(name_size + 1);
            return v.substr(std::min(v.find_first_not_of(' '), v.size()));
        };
        if (named(line, "content-type")) out.content_type = value(12);
        if (named(line, "retry-after")) out.retry_after = value(11);
    }
    out.body = text;
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const answer sent = read_answer(text);
    const std::uint64_t seed = fuzz::digest(text);
    const milliseconds cap{seed % 10'000'000'000};
    // Any moment between 1970 and 2100, to the nanosecond.
    const std::chrono::system_clock::time_point now{
        std::chrono::nanoseconds{static_cast<std::int64_t>((seed >> 3) % 4'102'444'800'000'000'000)}};
    const std::size_t max_bytes = (seed >> 40) % 513;

    response_facts facts;
    facts.status = sent.status;
    facts.content_type = sent.content_type;
    facts.retry_after = sent.retry_after;
    facts.error_body = sent.body;
    const int status = sent.status;

    const auto verdict = classify_response(facts, cap, now);
    if (!verdict) {
        FUZZ_CHECK(status == 200);
    } else {
        FUZZ_CHECK(verdict->http_status == status);
        FUZZ_CHECK(verdict->kind == expected_kind(status));
        FUZZ_CHECK(!verdict->message.empty() && clean(verdict->message));
        FUZZ_CHECK(verdict->message.size() <= 600);
        if (verdict->retry_after) {
            FUZZ_CHECK(verdict->kind == failure_kind::throttled && sent.retry_after);
            FUZZ_CHECK(*verdict->retry_after >= milliseconds{0} && *verdict->retry_after <= cap);
        }
    }

    if (sent.retry_after) check_retry_after(*sent.retry_after, now);
    check_sanitize(sent.body, max_bytes);
    const std::string detail = error_body_message(sent.body);
    FUZZ_CHECK(clean(detail) && detail.size() <= shown_at_most(300));
    const failure broken = classify_broken_body(sent.body);
    FUZZ_CHECK(broken.kind == failure_kind::broken_response && clean(broken.message));
    return 0;
}
