#pragma once
// The status page served at GET / on the metrics listener: per customer its
// freshness, last success and last failure, and a strip of its windows from
// history_start to the horizon coloured by ledger state. Rendering is a pure
// function of a snapshot (data in, HTML out): no clock, no database, no
// sockets. Every text it prints is HTML-escaped; the page holds no script and
// loads nothing from elsewhere.

#include "model/comeback.hpp"

#include <date/date.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace comeback {

// One window of a customer's strip, as the ledger has it.
struct status_window {
    date::local_days first_day;
    date::local_days end_day;  // exclusive
    // The ledger's status ("complete", "failed", "pending", "held", ... as
    // stored; an unknown one is shown as it is), or "stale": complete, but its
    // last fetch is older than its freshness tier allows.
    std::string state;
    std::optional<instant> fetched_at;
};

// How many of a customer's windows are in one state (as status_window's).
struct status_state_count {
    std::string state;
    std::size_t windows = 0;
};

struct status_customer {
    std::string customer_id;
    bool configured = true;  // false: in the ledger, no longer in the configuration
    std::optional<instant> last_success;
    std::optional<std::string> last_error;  // of the most recent attempt that left one
    std::optional<instant> last_error_at;
    std::optional<std::string> last_error_kind;  // its failure kind; none for a held window's reason
    // Every window of the customer, counted by state (add_window).
    std::vector<status_state_count> counts;
    std::size_t windows_total = 0;
    // Whether this read kept the customer's strip: only the customers of the
    // pages lately asked for have one, so a read holds a few pages' windows,
    // not the ledger's.
    bool strip_read = false;
    // With strip_read, its newest windows (at most status_strip_max_windows
    // once add_window's caller called trim_strip), in time order.
    std::vector<status_window> windows;
};

// What one read of the database saw.
struct status_snapshot {
    std::optional<instant> read_at;  // none: not read yet
    std::vector<status_customer> customers;  // by customer_id
    // The last read failed: what the database said, and when. The customers
    // are then those of the last read that worked.
    std::optional<std::string> read_error;
    std::optional<instant> read_error_at;
};

// Bounds that keep the page small whatever the configuration holds.
inline constexpr std::size_t status_customers_per_page = 50;
// Weekly windows for ten years; a longer strip shows its newest windows.
inline constexpr std::size_t status_strip_max_windows = 520;

// Counts `w`, the customer's next window in time order, and keeps it in its
// strip when strip_read.
void add_window(status_customer& customer, status_window w);
// Drops all but the newest status_strip_max_windows of the strip, and the
// room it no longer needs.
void trim_strip(status_customer& customer);

// The customers of page `page` (1-based; past the last page: the last) of
// `count` customers: [first, last).
std::pair<std::size_t, std::size_t> status_page_customers(std::size_t count, std::size_t page);

// The page number a request target asks for: "/?page=3" is 3; anything
// missing or unreadable is 1.
std::size_t status_page_number(std::string_view target);

// The whole HTML document for page `page` (1-based; past the last page shows
// the last) of `snapshot`, ages relative to `now`.
std::string render_status_page(const status_snapshot& snapshot, std::size_t page, instant now);

// `text` with &, <, >, " and ' replaced by character references.
std::string html_escape(std::string_view text);

}  // namespace comeback
