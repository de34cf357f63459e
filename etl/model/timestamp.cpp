#include "model/timestamp.hpp"

#include "model/text.hpp"

#include <date/tz.h>

#include <array>
#include <stdexcept>

namespace comeback {
namespace {

constexpr std::string_view expected_shape =
    "expected YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|+HH:MM|-HH:MM]";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads `count` digits at `pos`; false when any of them is not a digit.
// The count is fixed at each call, so the loop unrolls; inlined, since every
// timestamp of a body comes through here six times or more.
template <std::size_t count>
[[gnu::always_inline]] inline bool read_digits(std::string_view text, std::size_t pos, int& out) {
    if (pos + count > text.size()) return false;
    int value = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (!is_digit(text[i])) return false;
        value = value * 10 + (text[i] - '0');
    }
    out = value;
    return true;
}

bool has(std::string_view text, std::size_t pos, char c) {
    return pos < text.size() && text[pos] == c;
}

// The zone files Debian installs list transitions up to 2037 only and leave
// later years to a rule footer, which date/tz does not read: it would keep the
// last offset (winter time) forever. The Gregorian calendar repeats every 28
// years until 2100, so a later time is looked up in the same date 28*k years
// earlier, where the transitions fall on the same weekdays.
constexpr int last_listed_year = 2037;
constexpr int calendar_cycle_years = 28;

date::local_seconds within_listed_years(date::local_seconds local) {
    static const date::local_seconds first_unlisted{
        date::local_days{date::year{last_listed_year + 1} / date::January / 1}};
    if (local < first_unlisted) return local;
    const date::local_days day = date::floor<date::days>(local);
    const date::year_month_day ymd{day};
    const int year = static_cast<int>(ymd.year());
    if (year <= last_listed_year) return local;
    const int cycles = (year - last_listed_year + calendar_cycle_years - 1) / calendar_cycle_years;
    const date::year_month_day earlier{ymd.year() - date::years{cycles * calendar_cycle_years},
                                       ymd.month(), ymd.day()};
    return date::local_days{earlier} + (local - day);
}

// The zone periods looked up last, each shrunk by a day at both ends so that
// every local time inside it is unique and far from a transition. A body's
// timestamps fall in a few periods (two a year where clocks change, and a
// booking date is often in another period than its comeback), so a handful of
// them spare a search of the zone's transitions for nearly every timestamp.
struct zone_period {
    const date::time_zone* zone = nullptr;
    date::local_seconds begin;
    date::local_seconds end;
    std::chrono::seconds offset{0};
};
struct period_cache {
    static constexpr std::size_t size = 8;
    std::array<zone_period, size> periods;
    std::size_t next = 0;  // the one replaced next: the oldest

    const zone_period* find(const date::time_zone& zone, date::local_seconds at) const {
        for (const zone_period& period : periods) {
            if (period.zone == &zone && at >= period.begin && at < period.end) return &period;
        }
        return nullptr;
    }
    void add(const zone_period& period) {
        periods[next] = period;
        next = (next + 1) % size;
    }
};
thread_local period_cache recent_periods;

}  // namespace

instant local_to_instant(date::local_time<std::chrono::microseconds> local,
                         const date::time_zone& zone) {
    // For a unique time `first` is the only answer; in a gap it is the period
    // before the jump (the clock "has not moved yet"), in a repeated hour it is
    // the earlier period. One rule covers all three, with no exception path.
    const date::local_seconds lookup = within_listed_years(date::floor<std::chrono::seconds>(local));
    period_cache& cache = recent_periods;
    if (const zone_period* period = cache.find(zone, lookup)) {
        return instant{local.time_since_epoch() - period->offset};
    }
    const date::local_info info = zone.get_info(lookup);
    if (info.result == date::local_info::unique) {
        const date::days margin{1};
        cache.add(zone_period{
            .zone = &zone,
            .begin = date::local_seconds{info.first.begin.time_since_epoch() + info.first.offset} + margin,
            .end = date::local_seconds{info.first.end.time_since_epoch() + info.first.offset} - margin,
            .offset = info.first.offset});
    }
    return instant{local.time_since_epoch() - info.first.offset};
}


timestamp_result parse_timestamp(std::string_view text, const date::time_zone& zone,
                                 std::string_view field) {
    const auto fail = [&](std::string_view why) {
        std::string message;
        message.append(field).append(": ").append(quoted(text)).append(" is not a timestamp: ");
        message.append(why);
        return timestamp_result{std::nullopt, std::move(message)};
    };
    if (text.empty()) return fail("it is empty");

    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!read_digits<4>(text, 0, year) || !has(text, 4, '-') || !read_digits<2>(text, 5, month) ||
        !has(text, 7, '-') || !read_digits<2>(text, 8, day) || !has(text, 10, 'T') ||
        !read_digits<2>(text, 11, hour) || !has(text, 13, ':') ||
        !read_digits<2>(text, 14, minute)) {
        return fail(expected_shape);
    }
    std::size_t pos = 16;
    long micros = 0;
    if (has(text, pos, ':')) {
        if (!read_digits<2>(text, pos + 1, second)) return fail(expected_shape);
        pos += 3;
        if (has(text, pos, '.')) {
            ++pos;
            const std::size_t first_digit = pos;
            while (pos < text.size() && is_digit(text[pos])) {
                // Digits past the sixth are dropped: truncation, never rounding,
                // so an instant never moves into the next microsecond (or day).
                if (pos - first_digit < 6) micros = micros * 10 + (text[pos] - '0');
                ++pos;
            }
            const std::size_t digits = pos - first_digit;
            if (digits == 0) return fail("a '.' must be followed by fraction digits");
            for (std::size_t i = digits; i < 6; ++i) micros *= 10;
        }
    }

    const date::year_month_day ymd{date::year{year}, date::month{static_cast<unsigned>(month)},
                                   date::day{static_cast<unsigned>(day)}};
    if (month < 1 || month > 12) return fail("month " + std::to_string(month) + " is out of range");
    if (!ymd.ok()) return fail("day " + std::to_string(day) + " does not exist in that month");
    if (hour > 23) return fail("hour " + std::to_string(hour) + " is out of range");
    if (minute > 59) return fail("minute " + std::to_string(minute) + " is out of range");
    if (second > 59) return fail("second " + std::to_string(second) + " is out of range");

    using std::chrono::hours;
    using std::chrono::microseconds;
    using std::chrono::minutes;
    using std::chrono::seconds;
    const auto since_midnight = hours{hour} + minutes{minute} + seconds{second} + microseconds{micros};

    if (pos == text.size()) {
        const date::local_time<microseconds> local{date::local_days{ymd}.time_since_epoch() +
                                                   since_midnight};
        return timestamp_result{local_to_instant(local, zone), {}};
    }

    minutes offset{0};
    if (text[pos] == 'Z') {
        ++pos;
    } else if (text[pos] == '+' || text[pos] == '-') {
        int offset_hours = 0, offset_minutes = 0;
        if (!read_digits<2>(text, pos + 1, offset_hours) || !has(text, pos + 3, ':') ||
            !read_digits<2>(text, pos + 4, offset_minutes)) {
            return fail("the offset must read +HH:MM or -HH:MM");
        }
        if (offset_hours > 23 || offset_minutes > 59) return fail("the offset is out of range");
        offset = hours{offset_hours} + minutes{offset_minutes};
        if (text[pos] == '-') offset = -offset;
        pos += 6;
    } else {
        return fail("unexpected text after the time (" + std::string(expected_shape) + ")");
    }
    if (pos != text.size()) {
        return fail("unexpected text after the offset (" + std::string(expected_shape) + ")");
    }
    const date::sys_time<microseconds> written{date::sys_days{ymd}.time_since_epoch() +
                                               since_midnight};
    return timestamp_result{instant{written - offset}, {}};
}

std::string format_utc(instant value) { return date::format("%FT%TZ", value); }

const date::time_zone& find_zone(std::string_view name) {
    try {
        return *date::locate_zone(name);
    } catch (const std::exception& error) {
        throw std::runtime_error("unknown time zone " + quoted(name) + ": " + error.what());
    }
}

}  // namespace comeback
