#include "plan/windows.hpp"

#include "model/timestamp.hpp"

#include <catch2/catch.hpp>
#include <date/tz.h>

#include <algorithm>
#include <stdexcept>

using namespace date::literals;
using comeback::format_utc;
using comeback::plan_windows;
using comeback::window;
using comeback::window_containing;

namespace {

const date::time_zone& stockholm() { return comeback::find_zone("Europe/Stockholm"); }

date::local_days day(date::year_month_day ymd) { return date::local_days{ymd}; }

std::chrono::hours length_of(const window& w) {
    return std::chrono::duration_cast<std::chrono::hours>(w.to - w.from);
}

}  // namespace

TEST_CASE("a seven-day window runs Monday to Monday at local midnight", "[plan]") {
    const window w = window_containing(day(2026_y / 1 / 14), date::days{7}, stockholm());
    CHECK(w.first_day == day(2026_y / 1 / 12));
    CHECK(w.end_day == day(2026_y / 1 / 19));
    CHECK(w.from_text() == "2026-01-12T00:00:00");
    CHECK(w.to_text() == "2026-01-19T00:00:00");
    CHECK(format_utc(w.from) == "2026-01-11T23:00:00.000000Z");
    CHECK(format_utc(w.to) == "2026-01-18T23:00:00.000000Z");
    CHECK(window_containing(day(2026_y / 3 / 30), date::days{7}, stockholm()).from_text() ==
          "2026-03-30T00:00:00");
}

TEST_CASE("across DST changes a window is still whole local days", "[plan][dst]") {
    // The spring-forward Sunday 29 March 2026 ends the window 23-30 March: 167 hours.
    const window spring = window_containing(day(2026_y / 3 / 29), date::days{7}, stockholm());
    CHECK(spring.from_text() == "2026-03-23T00:00:00");
    CHECK(spring.to_text() == "2026-03-30T00:00:00");
    CHECK(format_utc(spring.from) == "2026-03-22T23:00:00.000000Z");
    CHECK(format_utc(spring.to) == "2026-03-29T22:00:00.000000Z");
    CHECK(length_of(spring) == std::chrono::hours{167});

    const window autumn = window_containing(day(2026_y / 10 / 25), date::days{7}, stockholm());
    CHECK(autumn.from_text() == "2026-10-19T00:00:00");
    CHECK(length_of(autumn) == std::chrono::hours{169});

    const auto days = plan_windows(day(2026_y / 3 / 28), day(2026_y / 3 / 30), date::days{1}, stockholm());
    REQUIRE(days.size() == 3);
    CHECK(length_of(days[0]) == std::chrono::hours{24});
    CHECK(length_of(days[1]) == std::chrono::hours{23});
    CHECK(length_of(days[2]) == std::chrono::hours{24});
}

TEST_CASE("planned windows cover the range, touch at their boundaries and cross year ends", "[plan]") {
    const auto windows =
        plan_windows(day(2025_y / 12 / 20), day(2026_y / 1 / 10), date::days{7}, stockholm());
    REQUIRE(windows.size() == 4);
    CHECK(windows.front().from_text() == "2025-12-15T00:00:00");
    CHECK(windows.back().to_text() == "2026-01-12T00:00:00");
    CHECK(windows[2].from_text() == "2025-12-29T00:00:00");
    CHECK(windows[2].to_text() == "2026-01-05T00:00:00");
    for (std::size_t i = 1; i < windows.size(); ++i) {
        // Inclusive from/to: adjacent windows share the boundary instant.
        CHECK(windows[i].from == windows[i - 1].to);
        CHECK(windows[i].first_day == windows[i - 1].end_day);
    }
}

TEST_CASE("the same day falls in the same window whatever range is planned", "[plan]") {
    const date::days length{30};
    const window alone = window_containing(day(2026_y / 6 / 15), length, stockholm());
    for (const auto first : {day(2026_y / 1 / 1), day(2026_y / 6 / 1), day(2026_y / 6 / 15)}) {
        const auto windows = plan_windows(first, day(2026_y / 7 / 31), length, stockholm());
        CHECK(std::count(windows.begin(), windows.end(), alone) == 1);
    }
    CHECK(alone.first_day <= day(2026_y / 6 / 15));
    CHECK(alone.end_day > day(2026_y / 6 / 15));
    CHECK((alone.first_day - day(2000_y / 1 / 3)).count() % 30 == 0);
}

TEST_CASE("days before the anchor belong to the windows before it", "[plan]") {
    const window w = window_containing(day(1999_y / 12 / 31), date::days{7}, stockholm());
    CHECK(w.from_text() == "1999-12-27T00:00:00");
    CHECK(w.to_text() == "2000-01-03T00:00:00");
    const window anchor = window_containing(day(2000_y / 1 / 3), date::days{7}, stockholm());
    CHECK(anchor.from_text() == "2000-01-03T00:00:00");
}

TEST_CASE("a single day in one window plans exactly that window", "[plan]") {
    const auto windows = plan_windows(day(2026_y / 1 / 12), day(2026_y / 1 / 12), date::days{7}, stockholm());
    REQUIRE(windows.size() == 1);
    CHECK(windows[0] == window_containing(day(2026_y / 1 / 12), date::days{7}, stockholm()));
}

TEST_CASE("a non-positive length or a reversed range is refused", "[plan]") {
    CHECK_THROWS_AS(plan_windows(day(2026_y / 1 / 1), day(2026_y / 1 / 2), date::days{0}, stockholm()),
                    std::invalid_argument);
    CHECK_THROWS_AS(window_containing(day(2026_y / 1 / 1), date::days{-7}, stockholm()),
                    std::invalid_argument);
    CHECK_THROWS_WITH(plan_windows(day(2026_y / 1 / 2), day(2026_y / 1 / 1), date::days{7}, stockholm()),
                      "window range ends (2026-01-01) before it starts (2026-01-02)");
}

TEST_CASE("a window's bounds are written with every digit, whatever the year", "[plan]") {
    const window early{day(987_y / 1 / 5), day(2026_y / 10 / 9), {}, {}};
    CHECK(early.from_text() == "0987-01-05T00:00:00");
    CHECK(early.to_text() == "2026-10-09T00:00:00");
    const window far{day(9999_y / 12 / 31), day(10000_y / 1 / 1), {}, {}};
    CHECK(far.from_text() == "9999-12-31T00:00:00");
    CHECK(far.to_text() == "10000-01-01T00:00:00");
}
