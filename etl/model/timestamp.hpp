#pragma once
// Reading the timestamps Vitec writes. The rules: docs/data-model.md, "Timestamps".

#include "model/comeback.hpp"

#include <date/date.h>

#include <chrono>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace comeback {

// The outcome of reading one timestamp: either an instant or a reason it is not one.
struct timestamp_result {
    std::optional<instant> value;
    std::string error;  // empty when value is set; otherwise names what was wrong

    explicit operator bool() const { return value.has_value(); }
};

// Reads `YYYY-MM-DDTHH:MM[:SS[.f...]][Z|+HH:MM|-HH:MM]`. Any number of fractional
// digits is accepted; digits past the sixth are truncated (towards the past).
// Without an offset the text is wall-clock time in `zone`: a time in the
// spring-forward gap is read as if the clock had not yet moved (shifted later by
// the gap), a time in the repeated autumn hour as its first occurrence (summer time).
// Never throws for bad text: the error names `field` and the value.
timestamp_result parse_timestamp(std::string_view text, const date::time_zone& zone,
                                 std::string_view field);

// Reads a wall-clock time in `zone` as an instant by the rule above: the offset in
// force just before the time (so a time in the gap moves later by the gap, and a
// repeated time is its first occurrence). Never throws.
instant local_to_instant(date::local_time<std::chrono::microseconds> local,
                         const date::time_zone& zone);

// Renders an instant as ISO 8601 UTC with microseconds, e.g. 2024-04-28T20:58:37.569133Z.
std::string format_utc(instant value);

// Looks up an IANA zone name; throws std::runtime_error naming the zone when unknown.
const date::time_zone& find_zone(std::string_view name);

}  // namespace comeback
