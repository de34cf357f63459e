#pragma once
// The sync_windows ledger, for the daemon's planning and the status command.

#include "load/pqxx_fwd.hpp"
#include "model/comeback.hpp"
#include "plan/windows.hpp"

#include <date/date.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

struct ledger_entry {
    date::local_days first_day;
    date::local_days end_day;  // exclusive
    std::string status;        // "pending", "complete" or "failed"
    int attempts = 0;
    std::optional<instant> fetched_at;  // the last complete load
    std::optional<std::string> last_error;
    std::optional<instant> attempted_at;  // the last attempt of any outcome
    std::optional<int> last_http_status;
};

struct customer_status {
    std::string customer_id;
    std::optional<instant> last_success;
    int windows_complete = 0;
    int windows_failed = 0;
    int windows_pending = 0;
    // The window whose last complete fetch is oldest (never fetched first).
    std::optional<date::local_days> stalest_window_first_day;
    std::optional<instant> stalest_window_fetched_at;
    std::optional<std::string> last_error;
};

// Inserts a 'pending' ledger row for each window that has none; existing rows
// are left alone. One statement, one transaction.
// Throws std::invalid_argument (bad schema name) and pqxx exceptions.
void plan_windows_in_ledger(pqxx::connection& connection, std::string_view schema,
                            std::string_view customer_id, std::string_view date_criteria,
                            std::span<const window> windows);

// The customer's ledger rows for one date criteria, ordered by first_day.
std::vector<ledger_entry> read_ledger(pqxx::connection& connection, std::string_view schema,
                                      std::string_view customer_id,
                                      std::string_view date_criteria);

// One row per customer with ledger rows, from the sync_status view, by customer_id.
std::vector<customer_status> read_sync_status(pqxx::connection& connection,
                                              std::string_view schema);

}  // namespace comeback
