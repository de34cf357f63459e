#pragma once
// Backfill progress: a live bar on a terminal, periodic log lines otherwise.
// Pure bookkeeping plus rendering; the caller decides when to draw.

#include <chrono>
#include <cstdint>
#include <string>

namespace comeback {

class progress_tracker {
public:
    using clock = std::chrono::steady_clock;

    progress_tracker(std::uint64_t total_windows, clock::time_point started = clock::now())
        : total_(total_windows), started_(started) {}

    // One whose total grows as customers are planned (add_windows) until
    // all_planned().
    static progress_tracker while_planning(clock::time_point started = clock::now()) {
        progress_tracker tracker(0, started);
        tracker.planning_ = true;
        return tracker;
    }

    // Windows of a customer just planned.
    void add_windows(std::uint64_t windows) { total_ += windows; }
    void all_planned() { planning_ = false; }

    void window_done(std::uint64_t rows, bool failed) {
        ++done_;
        rows_ += rows;
        if (failed) ++failed_;
    }

    std::uint64_t done() const { return done_; }
    std::uint64_t total() const { return total_; }
    std::uint64_t rows() const { return rows_; }
    std::uint64_t failed() const { return failed_; }
    // Windows per second so far; 0 before the first.
    double rate(clock::time_point now) const;
    // Time left at the current rate; "?" until a window is done and every
    // customer is planned.
    std::string eta_text(clock::time_point now) const;

    // `[#######.......]  120/300 windows  45210 rows  3.1 win/s  ETA 58s`, fitting `width` columns;
    // `120/300+ windows` while the total may still grow.
    std::string bar(clock::time_point now, std::size_t width = 80) const;

private:
    std::uint64_t total_;
    std::uint64_t done_ = 0;
    std::uint64_t rows_ = 0;
    std::uint64_t failed_ = 0;
    clock::time_point started_;
    bool planning_ = false;  // the total may still grow: the time left is unknown
};

// A duration for people, to the minute or second: "1h02m", "3m05s", "12s"
// (the ETA, status's ages). Not a setting's spelling: that is format_duration
// in config/config.hpp, which parse_duration reads back.
std::string human_duration(std::chrono::seconds duration);

}  // namespace comeback
