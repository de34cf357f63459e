#include "load/ledger.hpp"

#include "load/identifier.hpp"
#include "load/sql_time.hpp"

#include <pqxx/pqxx>

#include <string>

namespace comeback {

namespace {

// An integer array literal for an unnest() parameter: integers need no quoting.
template <typename Values>
std::string int_array(const Values& values) {
    std::string text = "{";
    for (const auto& value : values) {
        if (text.size() > 1) text += ',';
        text += std::to_string(value);
    }
    return text + "}";
}

template <typename T>
std::optional<T> optional_field(const pqxx::field& field) {
    if (field.is_null()) return std::nullopt;
    return field.as<T>();
}

std::optional<instant> optional_instant(const pqxx::field& field) {
    if (field.is_null()) return std::nullopt;
    return sql_time::from_micros(field.as<long long>());
}

}  // namespace

void plan_windows_in_ledger(pqxx::connection& connection, std::string_view schema,
                            std::string_view customer_id, std::string_view date_criteria,
                            std::span<const window> windows) {
    const std::string quoted = quoted_schema(schema);
    if (windows.empty()) return;
    std::vector<long long> first_days, end_days, froms, tos;
    for (const auto& w : windows) {
        first_days.push_back(sql_time::day_number(w.first_day));
        end_days.push_back(sql_time::day_number(w.end_day));
        froms.push_back(sql_time::micros(w.from));
        tos.push_back(sql_time::micros(w.to));
    }
    pqxx::work tx{connection, "plan windows"};
    tx.exec_params0(
        "INSERT INTO " + quoted + ".sync_windows"
        " (customer_id, date_criteria, first_day, end_day, window_from, window_to, status)"
        " SELECT $1, $2, " COMEBACK_SQL_DAYS_TO_DATE("w.first_day") ", "
        COMEBACK_SQL_DAYS_TO_DATE("w.end_day") ", "
        COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("w.window_from") ", "
        COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("w.window_to") ", 'pending'"
        " FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])"
        "   AS w (first_day, end_day, window_from, window_to)"
        " ON CONFLICT (customer_id, date_criteria, first_day, end_day) DO NOTHING",
        std::string(customer_id), std::string(date_criteria), int_array(first_days),
        int_array(end_days), int_array(froms), int_array(tos));
    tx.commit();
}

std::vector<ledger_entry> read_ledger(pqxx::connection& connection, std::string_view schema,
                                      std::string_view customer_id,
                                      std::string_view date_criteria) {
    const std::string quoted = quoted_schema(schema);
    pqxx::read_transaction tx{connection, "read ledger"};
    auto result = tx.exec_params(
        "SELECT " COMEBACK_SQL_DATE_TO_DAYS("first_day") ", " COMEBACK_SQL_DATE_TO_DAYS("end_day")
        ", status, attempts, " COMEBACK_SQL_TIMESTAMPTZ_TO_MICROS("fetched_at")
        ", last_error, " COMEBACK_SQL_TIMESTAMPTZ_TO_MICROS("attempted_at") ", last_http_status"
        " FROM " + quoted + ".sync_windows"
        " WHERE customer_id = $1 AND date_criteria = $2 ORDER BY first_day, end_day",
        std::string(customer_id), std::string(date_criteria));
    std::vector<ledger_entry> entries;
    entries.reserve(result.size());
    for (const auto& row : result) {
        ledger_entry entry;
        entry.first_day = sql_time::from_day_number(row[0].as<int>());
        entry.end_day = sql_time::from_day_number(row[1].as<int>());
        entry.status = row[2].as<std::string>();
        entry.attempts = row[3].as<int>();
        entry.fetched_at = optional_instant(row[4]);
        entry.last_error = optional_field<std::string>(row[5]);
        entry.attempted_at = optional_instant(row[6]);
        entry.last_http_status = optional_field<int>(row[7]);
        entries.push_back(std::move(entry));
    }
    return entries;
}

std::vector<customer_status> read_sync_status(pqxx::connection& connection,
                                              std::string_view schema) {
    const std::string quoted = quoted_schema(schema);
    pqxx::read_transaction tx{connection, "read sync status"};
    auto result = tx.exec(
        "SELECT customer_id, " COMEBACK_SQL_TIMESTAMPTZ_TO_MICROS("last_success")
        ", windows_complete, windows_failed, windows_pending, "
        COMEBACK_SQL_DATE_TO_DAYS("stalest_window_first_day") ", "
        COMEBACK_SQL_TIMESTAMPTZ_TO_MICROS("stalest_window_fetched_at") ", last_error"
        " FROM " + quoted + ".sync_status ORDER BY customer_id");
    std::vector<customer_status> statuses;
    statuses.reserve(result.size());
    for (const auto& row : result) {
        customer_status status;
        status.customer_id = row[0].as<std::string>();
        status.last_success = optional_instant(row[1]);
        status.windows_complete = row[2].as<int>();
        status.windows_failed = row[3].as<int>();
        status.windows_pending = row[4].as<int>();
        if (!row[5].is_null()) status.stalest_window_first_day = sql_time::from_day_number(row[5].as<int>());
        status.stalest_window_fetched_at = optional_instant(row[6]);
        status.last_error = optional_field<std::string>(row[7]);
        statuses.push_back(std::move(status));
    }
    return statuses;
}

}  // namespace comeback
