// The timestamp parser on any text: it never throws; it returns an instant or
// an error naming the field; an instant reads back from its own UTC rendering;
// a written offset makes the API zone irrelevant; an offset-less time follows
// the documented rule (the offset in force just before the wall-clock time),
// whatever the parser's cache of the last zone period holds; digits past the
// sixth change nothing.

#include "model/text.hpp"
#include "model/timestamp.hpp"
#include "support/check.hpp"

#include <date/tz.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace comeback;
using std::chrono::microseconds;
using std::chrono::seconds;

constexpr std::string_view field = "occursAt";

bool same(const timestamp_result& a, const timestamp_result& b) {
    return a.value == b.value && a.value.has_value() == b.value.has_value();
}

// The shape parse_timestamp documents: date, 'T', hours and minutes at fixed places.
bool has_offset(std::string_view text) {
    if (text.empty()) return false;
    if (text.back() == 'Z') return true;
    return text.size() >= 22 && (text[text.size() - 6] == '+' || text[text.size() - 6] == '-');
}

// The text with any fraction digits past the sixth removed.
std::string six_fraction_digits(std::string_view text) {
    std::string out(text);
    if (out.size() < 20 || out[19] != '.') return out;
    std::size_t end = 20;
    while (end < out.size() && out[end] >= '0' && out[end] <= '9') ++end;
    if (end - 20 > 6) out.erase(26, end - 26);
    return out;
}

int year_of(instant value) {
    return static_cast<int>(date::year_month_day{date::floor<date::days>(value)}.year());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const date::time_zone& stockholm = find_zone("Europe/Stockholm");
    static const date::time_zone& utc = find_zone("UTC");
    static const date::time_zone& chatham = find_zone("Pacific/Chatham");  // +12:45 / +13:45
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    const timestamp_result read = parse_timestamp(text, stockholm, field);
    FUZZ_CHECK(read.value.has_value() == read.error.empty());
    if (!read) {
        FUZZ_CHECK(read.error.rfind(std::string(field) + ": ", 0) == 0);
        FUZZ_CHECK(is_valid_utf8(read.error) && read.error.find('\0') == std::string::npos);
        // A text that is no timestamp in one zone is none in any.
        FUZZ_CHECK(!parse_timestamp(text, chatham, field));
        return 0;
    }
    const instant value = *read.value;

    // The UTC rendering reads back as the same instant (for four-digit years).
    const int year = year_of(value);
    if (year >= 0 && year <= 9999) {
        const std::string rendered = format_utc(value);
        const timestamp_result again = parse_timestamp(rendered, chatham, field);
        FUZZ_CHECK(again && *again.value == value);
    }

    FUZZ_CHECK(same(read, parse_timestamp(six_fraction_digits(text), stockholm, field)));

    if (has_offset(text)) {
        FUZZ_CHECK(same(read, parse_timestamp(text, chatham, field)));
        FUZZ_CHECK(same(read, parse_timestamp(text, utc, field)));
        return 0;
    }

    // Offset-less: wall-clock time in the zone. Read in UTC it gives the wall
    // clock itself, and the rule gives the instant from it.
    const timestamp_result as_utc = parse_timestamp(text, utc, field);
    FUZZ_CHECK(as_utc);
    const date::local_time<microseconds> local{as_utc.value->time_since_epoch()};
    const auto offset = local.time_since_epoch() - value.time_since_epoch();
    const int local_year = year_of(*as_utc.value);
    if (local_year <= 2037) {
        // Inside the years the zone files list: the rule, looked up without any cache.
        const date::local_info info = stockholm.get_info(date::floor<seconds>(local));
        FUZZ_CHECK(offset == info.first.offset);
        if (info.result == date::local_info::unique) {
            FUZZ_CHECK(stockholm.to_local(value) == local);
        }
    }
    if (local_year >= 1980) {
        FUZZ_CHECK(offset == std::chrono::hours{1} || offset == std::chrono::hours{2});
    }
    return 0;
}
