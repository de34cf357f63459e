// `status`: the sync state per customer, read from the database (the
// sync_status view), so it works on any host that can reach it.

#include "commands/commands.hpp"

#include "config/config.hpp"
#include "exit_codes.hpp"
#include "load/database_failure.hpp"
#include "load/ledger.hpp"
#include "load/probe.hpp"
#include "model/timestamp.hpp"
#include "sync/database.hpp"
#include "observability/progress.hpp"
#include "sync/summary.hpp"

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include <iostream>

namespace comeback {

namespace {

std::string day_text(const std::optional<date::local_days>& day) {
    return day ? date::format("%F", *day) : "";
}

std::string day_text(date::local_days day) { return date::format("%F", day); }

std::string age_text(const std::optional<instant>& at, instant now) {
    if (!at) return "never";
    return human_duration(std::chrono::floor<std::chrono::seconds>(now - *at)) + " ago";
}

boost::json::value optional_text(const std::optional<std::string>& text) {
    return text ? boost::json::value(*text) : boost::json::value(nullptr);
}

// The database could not be asked: said on stdout in the chosen format, exit 1.
int report_unreachable(const command_line& line, const config& cfg, const std::string& reason) {
    const std::optional<std::string> warning = insecure_http_warning(cfg);
    if (line.json) {
        boost::json::object document;
        document["schema"] = cfg.database.schema;
        document["database"] = {{"reachable", false}, {"error", reason}};
        document["customers"] = boost::json::array();
        boost::json::array warnings;
        if (warning) warnings.emplace_back(*warning);
        document["warnings"] = std::move(warnings);
        std::cout << boost::json::serialize(document) << '\n';
    } else {
        if (warning) std::cout << "WARNING: " << *warning << "\n\n";
        std::cout << "database: unreachable: " << reason << '\n';
    }
    return exit_windows_failed;
}

}  // namespace

int status_command(const command_line& line, const config& cfg) {
    std::vector<customer_status> rows;
    std::vector<held_window> held;
    std::string database;
    try {
        database_connection connection(cfg.database);
        database = connection.description();
        with_deadline(connection, call_limit(cfg.database), [&](pqxx::connection& c) {
            if (auto trouble = probe_database(c)) throw database_unreachable(*trouble);
            rows = read_sync_status(c, cfg.database.schema);
            held = read_held_windows(c, cfg.database.schema);
        });
    } catch (const std::exception& error) {
        auto classified = classify_database_error(error, database);
        if (!classified || classified->kind == failure_kind::database_refused) throw;
        return report_unreachable(line, cfg, classified->message);
    }
    const instant now = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());

    // Configured customers without ledger rows yet still get a line.
    std::vector<customer_status> all = rows;
    for (const auto& customer : cfg.customers) {
        const bool listed = std::any_of(rows.begin(), rows.end(),
                                        [&](const customer_status& s) { return s.customer_id == customer.id; });
        if (!listed) {
            customer_status unseen;
            unseen.customer_id = customer.id;
            all.push_back(std::move(unseen));
        }
    }

    const std::optional<std::string> warning = insecure_http_warning(cfg);
    if (line.json) {
        boost::json::array customers;
        for (const auto& s : all) {
            boost::json::object item;
            item["customer_id"] = s.customer_id;
            item["last_success"] = s.last_success ? boost::json::value(format_utc(*s.last_success))
                                                  : boost::json::value(nullptr);
            item["freshness_seconds"] =
                s.last_success ? boost::json::value(std::chrono::floor<std::chrono::seconds>(now - *s.last_success).count())
                               : boost::json::value(nullptr);
            item["windows_complete"] = s.windows_complete;
            item["windows_failed"] = s.windows_failed;
            item["windows_pending"] = s.windows_pending;
            item["stalest_window"] = s.stalest_window_first_day
                                         ? boost::json::value(day_text(s.stalest_window_first_day))
                                         : boost::json::value(nullptr);
            item["last_error"] = optional_text(s.last_error);
            item["last_error_kind"] = optional_text(s.last_error_kind);
            item["windows_held"] = s.windows_held;
            boost::json::array held_windows;
            for (const auto& w : held) {
                if (w.customer_id != s.customer_id) continue;
                boost::json::object window;
                window["first_day"] = day_text(w.first_day);
                window["last_day"] = day_text(w.end_day - date::days{1});
                window["would_delete"] = w.deletions;
                window["live"] = w.live_rows;
                window["held_since"] = w.held_since ? boost::json::value(format_utc(*w.held_since))
                                                    : boost::json::value(nullptr);
                held_windows.push_back(std::move(window));
            }
            item["held_windows"] = std::move(held_windows);
            customers.push_back(std::move(item));
        }
        boost::json::object document;
        document["schema"] = cfg.database.schema;
        document["database"] = {{"reachable", true}, {"error", nullptr}};
        document["customers"] = std::move(customers);
        // Settings that weaken security while they are on, as sentences.
        boost::json::array warnings;
        if (warning) warnings.emplace_back(*warning);
        document["warnings"] = std::move(warnings);
        std::cout << boost::json::serialize(document) << '\n';
        return exit_ok;
    }

    std::vector<std::vector<std::string>> table;
    for (const auto& s : all) {
        table.push_back({s.customer_id, s.last_success ? format_utc(*s.last_success) : "never",
                         age_text(s.last_success, now), std::to_string(s.windows_complete),
                         std::to_string(s.windows_failed), std::to_string(s.windows_pending),
                         std::to_string(s.windows_held), day_text(s.stalest_window_first_day),
                         s.last_error_kind.value_or(""), s.last_error.value_or("")});
    }
    if (warning) std::cout << "WARNING: " << *warning << "\n\n";
    std::cout << "database: reachable (" << database << ")\n";
    std::cout << render_table({"customer", "last success", "freshness", "complete", "failed", "pending",
                               "held", "stalest window", "error kind", "last error"},
                              table);
    if (!held.empty()) {
        std::vector<std::vector<std::string>> held_table;
        for (const auto& w : held) {
            held_table.push_back({w.customer_id, day_text(w.first_day), day_text(w.end_day - date::days{1}),
                                  std::to_string(w.deletions) + " of " + std::to_string(w.live_rows),
                                  age_text(w.held_since, now)});
        }
        std::cout << "\nheld windows (nothing of them was written; accept a checked shrink with "
                     "backfill --from FIRST --to LAST --customer ID --accept-deletes):\n"
                  << render_table({"customer", "first day", "last day", "would delete", "held since"},
                                  held_table);
    }
    return exit_ok;
}

}  // namespace comeback
