#pragma once
// The pure scheduling core of `run`: which windows of one customer are due now,
// given the ledger, the freshness tiers, lookback/horizon and history_start.
// No clocks, no I/O: callers pass "today" and "now", so every decision can be
// tested with plain values.

#include "config/config.hpp"
#include "plan/windows.hpp"

#include <date/date.h>

#include <chrono>
#include <optional>
#include <span>
#include <vector>

namespace date {
class time_zone;
}

namespace comeback {

using sys_seconds = std::chrono::sys_time<std::chrono::seconds>;

// held: the deletion guard held the window's last load (its deletions wait).
enum class window_status { pending, complete, failed, held };

// What the ledger knows about one window of one customer.
struct window_state {
    date::local_days first_day;
    date::local_days end_day;
    window_status status = window_status::pending;
    std::optional<sys_seconds> fetched_at;  // last successful fetch, if any
    std::optional<sys_seconds> attempted_at;  // last attempt of any outcome
};

// The windows one customer is responsible for today.
struct customer_plan {
    std::vector<window> fresh;    // overlapping [today - lookback, today + horizon], in time order
    std::vector<window> history;  // from history_start up to the first fresh window, in time order
};

// Plans both ranges. Fresh and history windows never overlap: history stops
// where the first fresh window starts. Throws std::invalid_argument on a
// non-positive window length (load_config never produces one).
customer_plan plan_customer(date::local_days today, const sync_config& sync,
                            const date::time_zone& zone);

// How often a fresh window is re-fetched: the `every` of the narrowest
// freshness tier whose `within` covers the distance between the window's first
// day and today (past or future); beyond every tier, the widest tier's `every`.
// Without tiers, every poll_interval.
std::chrono::seconds refresh_interval(const window& w, date::local_days today,
                                      const sync_config& sync);

struct schedule_decision {
    std::vector<window> fresh;    // due now, nearest to today first
    std::vector<window> history;  // not complete yet, oldest first
    // When the earliest fresh window that is not due now becomes due; empty
    // when every fresh window is due (or there are none).
    std::optional<sys_seconds> next_fresh_due;
};

// A fresh window is due when the ledger has no successful fetch of it younger
// than its refresh interval (pending and failed windows are always due; the
// per-customer back-off below keeps failures from being hammered). A history
// window is due until the ledger shows it complete. A held window, fresh or
// history, is due one refresh interval after its last attempt: fetched again
// on its tier's schedule, so the deletion guard sees whether its content
// stays, without hammering.
schedule_decision decide(const customer_plan& plan, std::span<const window_state> ledger,
                         date::local_days today, sys_seconds now, const sync_config& sync);

// Per-customer back-off after a cycle with failures, in memory only.
struct customer_backoff {
    unsigned failed_cycles = 0;             // consecutive cycles that had a failed window
    std::optional<sys_seconds> parked_until;  // set after 401/403: no work before then

    // Records how a cycle ended: a clean one resets the count, a failed one adds to it.
    void cycle_succeeded();
    void cycle_failed();
    // After 401/403 at `now`: no work for this customer for `auth_backoff`.
    void park(sys_seconds now, std::chrono::milliseconds auth_backoff);
    bool parked(sys_seconds now) const { return parked_until && now < *parked_until; }
};

// How long a customer waits before its next cycle: the poll interval after a
// clean cycle; after n failed cycles in a row, poll_interval * 2^(n-1), capped
// at the auth back-off. Parking overrides both.
std::chrono::seconds cycle_delay(const customer_backoff& backoff, const sync_config& sync,
                                 const retry_config& retry);

}  // namespace comeback
