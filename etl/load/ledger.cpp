#include "load/ledger.hpp"

#include "load/identifier.hpp"
#include "load/ledger_sql.hpp"
#include "load/prepared.hpp"
#include "load/sql_time.hpp"
#include "load/statement_batch.hpp"
#include "model/text.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace comeback {

namespace {

// A digest as the ledger stores it: an unknown one (empty) is NULL.
std::optional<std::string> known_digest(std::string_view digest) {
    if (digest.empty()) return std::nullopt;
    return std::string(digest);
}

// An integer array literal for an unnest() parameter: integers need no
// quoting, so this skips copy_text's escaping (a customer's cycle sends four).
std::string int_array(const std::vector<long long>& values) {
    std::string text = "{";
    for (const long long value : values) {
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

// A row of sql::ledger::plan_windows (which read_ledger and plan_and_read_ledger run).
ledger_entry ledger_entry_of(const pqxx::row& row) {
    ledger_entry entry;
    entry.first_day = sql_time::from_day_number(row[0].as<int>());
    entry.end_day = sql_time::from_day_number(row[1].as<int>());
    entry.status = row[2].as<std::string>();
    entry.attempts = row[3].as<int>();
    entry.fetched_at = optional_instant(row[4]);
    entry.last_error = optional_field<std::string>(row[5]);
    entry.attempted_at = optional_instant(row[6]);
    entry.last_http_status = optional_field<int>(row[7]);
    entry.held_deletions = optional_field<int>(row[8]);
    entry.held_live_rows = optional_field<int>(row[9]);
    return entry;
}

// The transaction's search_path, by sql::use_schema or, for a read that
// scans the whole ledger, sql::ledger::use_schema_without_jit.
void use_schema(pqxx::transaction_base& tx, std::string_view schema,
                const sql::statement& setting = sql::use_schema) {
    check_schema_name(schema);
    sql::exec1(tx, setting, std::string(schema));
}

// One attempt's columns (sql::ledger::record_attempt $7..$31); an empty
// optional is NULL. A failed attempt leaves all empty but the HTTP status
// and error.
struct attempt {
    std::string_view status;
    std::optional<long long> rows_seen, rows_duplicate, rows_changed, rows_rejected;
    std::optional<int> http_status;
    std::optional<std::string> error;
    std::optional<long long> response_bytes, fetch_ms, load_ms;
    std::optional<std::string> fetched_at, content_digest, changed_at, compared_at;
    std::optional<std::string> held_digest, held_at;
    std::optional<long long> held_deletions, held_live_rows;
    std::optional<std::string> response_digest;
    std::optional<fetch_ticket> ticket;
    std::optional<changed_windows> others_changed;  // $27..$31
    bool ticket_from_counter = false;               // $32
    std::optional<std::string> error_kind;          // $33
};

// Runs record_attempt with `a`'s parameters through `run(statement,
// arguments...)`: directly in a transaction, or queued in a load's batch.
template <typename Run>
void with_attempt_parameters(const window_key& key, const attempt& a, Run&& run) {
    run(sql::ledger::record_attempt, key.customer_id, key.date_criteria.name(),
        sql_time::day_number(key.first_day), sql_time::day_number(key.end_day),
        sql_time::micros(key.from), sql_time::micros(key.to), std::string(a.status),
        a.rows_seen, a.rows_duplicate, a.rows_changed, a.rows_rejected, a.http_status,
        a.error, a.response_bytes, a.fetch_ms, a.load_ms, a.fetched_at,
        a.content_digest, a.changed_at, a.compared_at, a.held_digest, a.held_at,
        a.held_deletions, a.held_live_rows, a.response_digest, a.ticket,
        a.others_changed.has_value(), a.others_changed && a.others_changed->all_windows,
        std::string(date_criteria::occurrence_name),
        a.others_changed ? std::optional(sql_time::micros(a.others_changed->from)) : std::nullopt,
        a.others_changed ? std::optional(sql_time::micros(a.others_changed->to)) : std::nullopt,
        a.ticket_from_counter, a.error_kind);
}

void record_attempt(pqxx::transaction_base& tx, const window_key& key, const attempt& a) {
    with_attempt_parameters(key, a, [&](const sql::statement& s, const auto&... args) {
        sql::exec0(tx, s, args...);
    });
}

void record_attempt(sql::statement_batch& batch, const window_key& key, const attempt& a) {
    with_attempt_parameters(key, a, [&](const sql::statement& s, const auto&... args) {
        batch.add(s, sql::expect_no_rows(s), args...);
    });
}

}  // namespace

std::string held_reason(std::size_t deletions, std::size_t live_rows) {
    return "held: the load would soft-delete " + std::to_string(deletions) + " of the window's " +
           std::to_string(live_rows) + " live comebacks";
}

std::string describe_window(const window_key& key) {
    return "customer " + key.customer_id + " " + key.date_criteria.name() + " window " +
           date::format("%F", key.first_day) + ".." + date::format("%F", key.end_day);
}

void check_window_key(const window_key& key) {
    if (key.customer_id.empty()) throw std::invalid_argument("window key: empty customer id");
    if (key.date_criteria.name().empty()) {
        throw std::invalid_argument("window key: empty date criteria for customer " +
                                    key.customer_id);
    }
    if (key.end_day <= key.first_day || key.to <= key.from) {
        throw std::invalid_argument("window key: " + describe_window(key) +
                                    " ends before it starts");
    }
}

namespace {

// Plans `windows` and reads the customer's ledger (sql::ledger::plan_windows);
// no retention purges nothing.
std::vector<ledger_entry> plan_and_read(pqxx::connection& connection, std::string_view schema,
                                        std::string_view customer_id, const date_criteria& criteria,
                                        std::span<const window> windows,
                                        std::optional<std::chrono::seconds> rejected_raw_retention) {
    check_schema_name(schema);
    std::vector<long long> first_days, end_days, froms, tos;
    for (const auto& w : windows) {
        first_days.push_back(sql_time::day_number(w.first_day));
        end_days.push_back(sql_time::day_number(w.end_day));
        froms.push_back(sql_time::micros(w.from));
        tos.push_back(sql_time::micros(w.to));
    }
    std::optional<long long> retention_seconds;
    if (rejected_raw_retention) retention_seconds = rejected_raw_retention->count();
    // One statement, its own transaction: one round trip where BEGIN, the
    // schema and COMMIT made four, at every turn of every customer.
    sql::use_schema_for_session(connection, schema);
    pqxx::nontransaction tx{connection, "plan and read ledger"};
    const pqxx::result result =
        sql::exec(tx, sql::ledger::plan_windows, std::string(customer_id), criteria.name(),
                  int_array(first_days), int_array(end_days), int_array(froms), int_array(tos),
                  retention_seconds);
    std::vector<ledger_entry> entries;
    entries.reserve(result.size());
    for (const auto& row : result) {
        entries.push_back(ledger_entry_of(row));
        entries.back().confirmable_bytes = optional_field<std::uint64_t>(row["confirmable_bytes"]);
    }
    return entries;
}

}  // namespace

const ledger_entry* find_window(const std::vector<ledger_entry>& entries, date::local_days first_day,
                                date::local_days end_day) {
    for (const ledger_entry& entry : entries) {
        if (entry.first_day == first_day && entry.end_day == end_day) return &entry;
    }
    return nullptr;
}

std::vector<ledger_entry> read_ledger(pqxx::connection& connection, std::string_view schema,
                                      std::string_view customer_id, const date_criteria& criteria) {
    return plan_and_read(connection, schema, customer_id, criteria, {}, std::nullopt);
}

std::vector<ledger_entry> plan_and_read_ledger(pqxx::connection& connection, std::string_view schema,
                                               std::string_view customer_id, const date_criteria& criteria,
                                               std::span<const window> windows,
                                               std::chrono::seconds rejected_raw_retention) {
    return plan_and_read(connection, schema, customer_id, criteria, windows, rejected_raw_retention);
}

void for_each_ledger_window(pqxx::connection& connection, std::string_view schema,
                            const date_criteria& criteria, std::size_t chunk_rows,
                            const std::function<void(const customer_ledger_entry&)>& each) {
    check_schema_name(schema);
    chunk_rows = std::max<std::size_t>(chunk_rows, 1);
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx{connection, "read all ledgers"};
    use_schema(tx, schema, sql::ledger::use_schema_without_jit);
    customer_ledger_entry window;
    int first_day = 0;
    int end_day = 0;  // with customer "", before every window
    for (;;) {
        const pqxx::result chunk = sql::exec(tx, sql::ledger::read_all_windows, criteria.name(), window.customer_id,
                                             first_day, end_day, static_cast<long long>(chunk_rows));
        for (const auto& row : chunk) {
            first_day = row[0].as<int>();
            end_day = row[1].as<int>();
            window.entry.first_day = sql_time::from_day_number(first_day);
            window.entry.end_day = sql_time::from_day_number(end_day);
            window.entry.status = row[2].as<std::string>();
            window.entry.fetched_at = optional_instant(row[3]);
            window.customer_id = row[4].as<std::string>();
            each(window);
        }
        if (chunk.size() < chunk_rows) break;
    }
    tx.commit();
}

std::vector<customer_status> read_sync_status(pqxx::connection& connection,
                                              std::string_view schema) {
    check_schema_name(schema);
    pqxx::read_transaction tx{connection, "read sync status"};
    use_schema(tx, schema, sql::ledger::use_schema_without_jit);
    auto result = sql::exec(tx, sql::ledger::read_sync_status);
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
        status.last_error_at = optional_instant(row[8]);
        status.windows_held = row[9].as<int>();
        status.last_error_kind = optional_field<std::string>(row[10]);
        statuses.push_back(std::move(status));
    }
    return statuses;
}

std::vector<held_window> read_held_windows(pqxx::connection& connection, std::string_view schema) {
    check_schema_name(schema);
    pqxx::read_transaction tx{connection, "read held windows"};
    use_schema(tx, schema);
    std::vector<held_window> held;
    for (const auto& row : sql::exec(tx, sql::ledger::read_held_windows)) {
        held_window w;
        w.customer_id = row[0].as<std::string>();
        w.date_criteria = row[1].as<std::string>();
        w.first_day = sql_time::from_day_number(row[2].as<int>());
        w.end_day = sql_time::from_day_number(row[3].as<int>());
        w.deletions = optional_field<int>(row[4]).value_or(0);
        w.live_rows = optional_field<int>(row[5]).value_or(0);
        w.held_since = optional_instant(row[6]);
        w.attempted_at = optional_instant(row[7]);
        held.push_back(std::move(w));
    }
    return held;
}

void record_window_failure(pqxx::connection& connection, std::string_view schema,
                           const window_key& key, int http_status, failure_kind kind,
                           std::string_view error) {
    check_schema_name(schema);
    check_window_key(key);
    pqxx::work tx{connection, "record window failure"};
    use_schema(tx, schema);
    attempt failed;
    failed.status = "failed";
    if (http_status != 0) failed.http_status = http_status;
    failed.error = to_storable_text(cut_at_char_boundary(error, 2000));
    failed.error_kind = std::string(to_string(kind));
    record_attempt(tx, key, failed);
    tx.commit();
}

void read_load_start(sql::statement_batch& batch, const window_key& key, std::string_view content_digest,
                     std::string_view response_digest, load_start_options options, load_start& start) {
    const auto& s = sql::ledger::read_load_start;
    batch.add(s, [&start, &s](const pqxx::result& rows) {
        const pqxx::row row = sql::single_row(rows, s);
        start.stamp = row["stamp"].as<std::string>();
        last_load& last = start.last;
        last.fetched_at = optional_instant(row["fetched_at"]);
        last.confirms = row["confirms"].as<bool>();
        if (!row["held_same_for_s"].is_null()) {
            last.held_same_for = std::chrono::seconds{row["held_same_for_s"].as<long long>()};
        }
        if (!row["fetch_ticket"].is_null()) last.ticket = row["fetch_ticket"].as<fetch_ticket>();
        if (!row["live_rows_in_range"].is_null()) start.live_rows_in_range = row["live_rows_in_range"].as<bool>();
        if (last.confirms) {
            last.rows_seen = row["rows_seen"].as<std::size_t>();
            last.rows_duplicate = row["rows_duplicate"].as<std::size_t>();
            last.rows_rejected = row["rows_rejected"].is_null() ? 0 : row["rows_rejected"].as<std::size_t>();
        }
    }, key.customer_id, key.date_criteria.name(), sql_time::day_number(key.first_day),
       sql_time::day_number(key.end_day), known_digest(content_digest), known_digest(response_digest),
       options.probe_live_rows, sql_time::micros(key.from), sql_time::micros(key.to));
}

void record_complete_load(sql::statement_batch& batch, const window_key& key,
                          std::string_view stamp, const complete_load& load) {
    const std::string at{stamp};
    attempt complete;
    complete.status = "complete";
    complete.rows_seen = static_cast<long long>(load.rows_seen);
    complete.rows_duplicate = static_cast<long long>(load.rows_duplicate);
    complete.rows_changed = static_cast<long long>(load.rows_changed);
    complete.rows_rejected = static_cast<long long>(load.rows_rejected);
    complete.http_status = load.http_status;
    complete.response_bytes = static_cast<long long>(load.response_bytes);
    complete.fetch_ms = static_cast<long long>(load.fetch_duration.count());
    complete.load_ms = static_cast<long long>(load.load_duration.count());
    complete.fetched_at = at;
    complete.content_digest = known_digest(load.content_digest);
    complete.response_digest = known_digest(load.response_digest);
    if (load.changed_data) complete.changed_at = at;
    if (load.compared) complete.compared_at = at;
    complete.ticket = load.ticket;
    complete.ticket_from_counter = load.ticket_from_counter;
    complete.others_changed = load.others_changed;
    record_attempt(batch, key, complete);
}

void record_held_load(sql::statement_batch& batch, const window_key& key, std::string_view stamp,
                      const held_load& load) {
    attempt held;
    held.status = "held";
    held.http_status = load.http_status;
    held.error = held_reason(load.deletions, load.live_rows);
    held.held_digest = load.content_digest;
    held.held_at = std::string(stamp);
    held.held_deletions = static_cast<long long>(load.deletions);
    held.held_live_rows = static_cast<long long>(load.live_rows);
    record_attempt(batch, key, held);
}

}  // namespace comeback
