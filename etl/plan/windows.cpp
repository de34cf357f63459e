#include "plan/windows.hpp"

#include "model/timestamp.hpp"

#include <date/tz.h>

#include <cstdio>
#include <stdexcept>

namespace comeback {
namespace {

// Fixed so that a day falls in the same window whatever range is planned.
constexpr date::local_days anchor{date::year{2000} / date::January / 3};  // a Monday

// Floor division: days before the anchor belong to windows before it.
long long window_number(date::local_days day, date::days length) {
    const long long offset = (day - anchor).count();
    const long long n = length.count();
    return offset >= 0 ? offset / n : -((-offset + n - 1) / n);
}

instant local_midnight(date::local_days day, const date::time_zone& zone) {
    return local_to_instant(date::local_time<std::chrono::microseconds>{day}, zone);
}

window make_window(long long number, date::days length, const date::time_zone& zone) {
    window w;
    w.first_day = anchor + date::days{number * length.count()};
    w.end_day = w.first_day + length;
    w.from = local_midnight(w.first_day, zone);
    w.to = local_midnight(w.end_day, zone);
    return w;
}

void require_positive(date::days length) {
    if (length <= date::days{0}) {
        throw std::invalid_argument("window length must be at least one day, got " +
                                    std::to_string(length.count()));
    }
}

// By hand, neither date::format (several ostringstreams a call) nor
// snprintf (its format parsed at every call): every request, its log lines
// and its metrics format two of these, a fleet thousands a minute.
std::string local_midnight_text(date::local_days day) {
    const date::year_month_day ymd{day};
    const int year = int(ymd.year());
    if (year < 0 || year > 9999) {
        char text[32];
        const int length = std::snprintf(text, sizeof text, "%04d-%02u-%02uT00:00:00", year,
                                         unsigned(ymd.month()), unsigned(ymd.day()));
        return std::string(text, std::size_t(length));
    }
    std::string text = "0000-00-00T00:00:00";
    const auto digits = [&](std::size_t end, unsigned value) {  // right-aligned in text[..end)
        for (std::size_t at = end; value != 0; value /= 10) text[--at] = char('0' + value % 10);
    };
    digits(4, unsigned(year));
    digits(7, unsigned(ymd.month()));
    digits(10, unsigned(ymd.day()));
    return text;
}

}  // namespace

std::string window::from_text() const { return local_midnight_text(first_day); }
std::string window::to_text() const { return local_midnight_text(end_day); }

std::vector<window> plan_windows(date::local_days first, date::local_days last,
                                 date::days length, const date::time_zone& zone) {
    require_positive(length);
    if (last < first) {
        throw std::invalid_argument("window range ends (" + date::format("%F", last) +
                                    ") before it starts (" + date::format("%F", first) + ")");
    }
    const long long first_number = window_number(first, length);
    const long long last_number = window_number(last, length);
    std::vector<window> windows;
    windows.reserve(static_cast<std::size_t>(last_number - first_number + 1));
    for (long long number = first_number; number <= last_number; ++number) {
        windows.push_back(make_window(number, length, zone));
    }
    return windows;
}

window window_containing(date::local_days day, date::days length, const date::time_zone& zone) {
    require_positive(length);
    return make_window(window_number(day, length), length, zone);
}

}  // namespace comeback
