#pragma once
// Splitting time into the windows the report is fetched in.

#include "model/comeback.hpp"

#include <date/date.h>

#include <chrono>
#include <string>
#include <vector>

namespace date {
class time_zone;
}

namespace comeback {

// One fetch window: the local days [first_day, end_day) in the API zone. The
// request's from/to are both inclusive, so a window runs from local midnight
// of first_day to local midnight of end_day, and adjacent windows share that
// boundary instant: rows on it are fetched twice and deduplicated, never missed.
struct window {
    date::local_days first_day;
    date::local_days end_day;  // exclusive as a day, inclusive as the `to` instant
    instant from;              // local midnight of first_day, as UTC
    instant to;                // local midnight of end_day, as UTC

    std::string from_text() const;  // "YYYY-MM-DDTHH:MM:SS" local, as the API expects
    std::string to_text() const;

    friend bool operator==(const window&, const window&) = default;
};

// Every window of `length` days that overlaps the local days [first, last]
// (both inclusive). Windows are aligned to a fixed anchor (Monday 2000-01-03,
// local midnight), so the same day always falls in the same window whatever
// range is asked for: the ledger's keys stay stable from run to run.
// Throws std::invalid_argument when length is not positive or last < first.
std::vector<window> plan_windows(date::local_days first, date::local_days last,
                                 date::days length, const date::time_zone& zone);

// The window of `length` days containing `day`. Throws std::invalid_argument
// when length is not positive.
window window_containing(date::local_days day, date::days length, const date::time_zone& zone);

}  // namespace comeback
