#pragma once
// Instants and days cross into SQL as integers (microseconds and days since the
// Unix epoch): exact, locale-free, and cheap to stream through COPY.

#include "model/comeback.hpp"

#include <date/date.h>

#include <chrono>

// The statements convert them where they use them:
//   timestamptz 'epoch' + $1::bigint * interval '1 microsecond'
//   (extract(epoch FROM column) * 1000000)::bigint
//   date '1970-01-01' + $1::integer
//   column - date '1970-01-01'

namespace comeback::sql_time {

inline long long micros(instant value) { return value.time_since_epoch().count(); }

inline instant from_micros(long long value) { return instant{std::chrono::microseconds{value}}; }

inline int day_number(date::local_days day) {
    return static_cast<int>(day.time_since_epoch().count());
}

inline date::local_days from_day_number(int value) { return date::local_days{date::days{value}}; }

}  // namespace comeback::sql_time
