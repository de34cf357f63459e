// The response parser on any body: the body fed whole and the same body fed
// in pieces (sizes drawn from the body itself, batches of 1 to 3 elements)
// give the same rows, rejections and error (see same_verdict), and what comes
// out is fit for the loader: every element counted once in order, text valid
// UTF-8 without NUL, raw text within its cap.

#include "model/text.hpp"
#include "model/timestamp.hpp"
#include "parse/response_parser.hpp"
#include "support/check.hpp"
#include "support/split.hpp"

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace comeback;

struct outcome {
    row_batch all;
    std::optional<std::string> error;  // the response_error's message
    parse_summary summary;             // when there was no error
};

outcome parse(const std::vector<std::string_view>& pieces, parser_options options) {
    outcome out;
    std::size_t batches = 0;
    response_parser parser(options, [&](row_batch&& batch) {
        FUZZ_CHECK(!batch.empty());
        FUZZ_CHECK(batch.rows.size() + batch.rejections.size() <= options.batch_rows);
        ++batches;
        for (auto& row : batch.rows) out.all.rows.push_back(std::move(row));
        for (auto& rejected : batch.rejections) out.all.rejections.push_back(std::move(rejected));
    });
    try {
        for (std::string_view piece : pieces) parser.feed(piece);
        out.summary = parser.finish();
    } catch (const response_error& error) {
        out.error = error.what();
        FUZZ_CHECK(!out.error->empty());
        // A failed parser stays failed, with the same message.
        for (int attempt = 0; attempt < 2; ++attempt) {
            try {
                if (attempt == 0) parser.feed("[]");
                else parser.finish();
                FUZZ_CHECK(false);
            } catch (const response_error& again) {
                FUZZ_CHECK(*out.error == again.what());
            }
        }
        return out;
    }
    // finish() is idempotent and hands on nothing more.
    const std::size_t before = batches;
    const parse_summary again = parser.finish();
    FUZZ_CHECK(batches == before);
    FUZZ_CHECK(again.elements == out.summary.elements && again.bytes == out.summary.bytes);
    return out;
}

// The error as far as it must not depend on how the body arrived. Boost.JSON
// words a syntax error by where it noticed it: fed whole it may name the start
// of a literal, number or escape, fed in pieces the byte inside it that is
// wrong (a lone "\ude00" is an "illegal leading surrogate" one way and an
// "illegal trailing surrogate" the other). So for a body that is not JSON the
// byte and Boost.JSON's words are left out; every other message must be equal.
std::optional<std::string> same_verdict(const std::optional<std::string>& error) {
    constexpr std::string_view syntax = "the response body is not valid JSON at byte ";
    if (!error || error->rfind(syntax, 0) != 0) return error;
    return std::string(syntax);
}

bool storable(std::string_view text) {
    return is_valid_utf8(text) && text.find('\0') == std::string_view::npos;
}

// A name may be unknown (null or missing); one that is known must be storable.
bool storable_name(const std::optional<std::string>& name) { return !name || storable(*name); }

bool storable(const std::optional<named_ref>& ref) {
    return !ref || (!ref->id.empty() && storable(ref->id) && storable_name(ref->name));
}

void check_fit_for_loading(const outcome& out, std::size_t body_size, std::size_t max_raw_bytes) {
    const parse_summary& s = out.summary;
    FUZZ_CHECK(s.bytes == body_size);
    FUZZ_CHECK(s.rows == out.all.rows.size());
    FUZZ_CHECK(s.rejected == out.all.rejections.size());
    FUZZ_CHECK(s.elements == s.rows + s.rejected);

    // Every element is a row or a rejection, once, in array order.
    std::vector<bool> seen(s.elements, false);
    std::optional<std::size_t> last;
    const auto claim = [&](std::size_t index) {
        FUZZ_CHECK(index < s.elements && !seen[index]);
        FUZZ_CHECK(!last || *last < index);
        seen[index] = true;
        last = index;
    };
    for (const comeback_row& row : out.all.rows) {
        claim(row.index);
        FUZZ_CHECK(!row.id.empty() && storable(row.id));
        FUZZ_CHECK(storable(row.contact) && storable(row.booked_by));
        FUZZ_CHECK(storable(row.assigned_user) && storable(row.assigned_group));
        FUZZ_CHECK(!row.assigned_office || (!row.assigned_office->customer_id.empty() &&
                                            storable(row.assigned_office->customer_id) &&
                                            storable_name(row.assigned_office->name)));
        FUZZ_CHECK(!row.state || storable(*row.state));
        FUZZ_CHECK(!row.origin || storable(*row.origin));
    }
    last.reset();
    for (const rejection& r : out.all.rejections) {
        claim(r.index);
        FUZZ_CHECK(!r.reason.empty() && storable(r.reason));
        FUZZ_CHECK(!r.id || (!r.id->empty() && storable(*r.id)));
        // Replacing a bad byte by U+FFFD may grow the text, by at most 3 bytes per byte.
        FUZZ_CHECK(storable(r.raw) && r.raw.size() <= 3 * max_raw_bytes);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const date::time_zone& zone = find_zone("Europe/Stockholm");
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const std::uint64_t seed = fuzz::digest(body);

    parser_options options;
    options.api_zone = &zone;
    // A small cap now and then, so cutting raw text inside a character is exercised.
    options.max_raw_bytes = (seed >> 32) % 4 == 0 ? 1 + (seed >> 40) % 40 : 64 * 1024;
    const outcome whole = parse({body}, options);

    parser_options small_batches = options;
    small_batches.batch_rows = 1 + (seed >> 16) % 3;
    const outcome pieces = parse(fuzz::split(body, seed), small_batches);

    // The same verdict; before an error each run may have handed on a different
    // number of batches, which the caller discards anyway.
    if (same_verdict(whole.error) != same_verdict(pieces.error)) {
        std::fprintf(stderr, "whole: %s\npieces: %s\n", whole.error.value_or("no error").c_str(),
                     pieces.error.value_or("no error").c_str());
    }
    FUZZ_CHECK(same_verdict(whole.error) == same_verdict(pieces.error));
    if (whole.error) return 0;
    FUZZ_CHECK(whole.all.rows == pieces.all.rows);
    FUZZ_CHECK(whole.all.rejections == pieces.all.rejections);
    check_fit_for_loading(whole, size, options.max_raw_bytes);
    check_fit_for_loading(pieces, size, options.max_raw_bytes);
    return 0;
}
