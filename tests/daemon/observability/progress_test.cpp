#include "observability/progress.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace comeback;
using namespace std::chrono_literals;

TEST_CASE("progress reports rate and time left from the windows done so far") {
    const auto start = progress_tracker::clock::time_point{} + 1000s;
    progress_tracker progress(100, start);
    CHECK(progress.rate(start + 10s) == 0);
    CHECK(progress.eta_text(start + 10s) == "?");
    for (int i = 0; i < 20; ++i) progress.window_done(50, false);
    CHECK(progress.rows() == 1000);
    CHECK(progress.rate(start + 10s) == Approx(2.0));
    CHECK(progress.eta_text(start + 10s) == "40s");
}

TEST_CASE("the progress bar shows done, total, rows, rate, time left and failures") {
    const auto start = progress_tracker::clock::time_point{} + 1000s;
    progress_tracker progress(4, start);
    progress.window_done(10, false);
    progress.window_done(0, true);
    const std::string bar = progress.bar(start + 2s, 80);
    CHECK(bar.size() <= 80);
    CHECK(bar.find("2/4 windows") != std::string::npos);
    CHECK(bar.find("10 rows") != std::string::npos);
    CHECK(bar.find("1.0 win/s") != std::string::npos);
    CHECK(bar.find("ETA 2s") != std::string::npos);
    CHECK(bar.find("1 failed") != std::string::npos);
    // Half done: half the bar is filled.
    const auto filled = std::count(bar.begin(), bar.end(), '#');
    const auto empty = std::count(bar.begin(), bar.end(), '.') - 1;  // the rate's decimal point
    CHECK(filled == empty);
}

TEST_CASE("durations read as hours, minutes and seconds") {
    CHECK(human_duration(12s) == "12s");
    CHECK(human_duration(185s) == "3m05s");
    CHECK(human_duration(3720s) == "1h02m");
}

TEST_CASE("while customers are being planned the total grows and the time left is unknown") {
    const auto start = progress_tracker::clock::time_point{} + 1000s;
    auto progress = progress_tracker::while_planning(start);
    const std::string before_any = progress.bar(start, 80);
    CHECK(before_any.find(" 0/0+ windows") != std::string::npos);
    CHECK(std::count(before_any.begin(), before_any.end(), '#') == 0);
    progress.add_windows(3);
    progress.window_done(10, false);
    CHECK(progress.eta_text(start + 1s) == "?");
    CHECK(progress.bar(start + 1s, 80).find(" 1/3+ windows") != std::string::npos);
    progress.add_windows(1);
    progress.all_planned();
    CHECK(progress.total() == 4);
    CHECK(progress.eta_text(start + 1s) == "3s");
    CHECK(progress.bar(start + 1s, 80).find(" 1/4 windows") != std::string::npos);
}
