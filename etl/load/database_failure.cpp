#include "load/database_failure.hpp"

#include "model/text.hpp"

#include <pqxx/pqxx>

#include <algorithm>

namespace comeback {

namespace {

// libpq's text, made one line: the first non-empty line without its
// "ERROR:  " or "FATAL:  " prefix, control characters as spaces, cut at a
// character boundary.
std::string first_line(std::string_view text) {
    std::string_view line;
    while (!text.empty() && line.empty()) {
        const auto end = text.find('\n');
        line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    }
    for (std::string_view prefix : {"ERROR:", "FATAL:", "PANIC:"}) {
        if (line.starts_with(prefix)) {
            line.remove_prefix(prefix.size());
            while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        }
    }
    constexpr std::size_t max_bytes = 300;
    std::string out = to_storable_text(cut_at_char_boundary(line, max_bytes));
    std::replace_if(out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }, ' ');
    if (line.size() > max_bytes) out += "...";
    return out;
}

bool is_lost_sqlstate(std::string_view state) {
    return state.starts_with("08") ||                                          // connection exception
           state == "57P01" || state == "57P02" || state == "57P03" ||        // shutdowns, not yet up
           state == "57P05" ||                                                // idle_session_timeout
           state == "53300";                                                  // too many connections
}

// The limits the daemon sets on its sessions (database.statement_timeout,
// lock_timeout, idle_in_transaction_timeout), or a cancel.
std::string_view timeout_of(std::string_view state) {
    if (state == "57014") return "statement cancelled (database.statement_timeout, or a cancel request)";
    if (state == "55P03") return "lock wait ended (database.lock_timeout)";
    if (state == "25P03") return "session ended idle in a transaction (database.idle_in_transaction_timeout)";
    return {};
}

// What an operator should check when the database refuses a statement.
std::string_view what_to_check(std::string_view state) {
    if (state == "42501")
        return "grant the role its privileges on the schema (docs/operations.md, \"Database roles "
               "and least privilege\")";
    if (state == "42P01" || state == "42703" || state == "42883" || state == "3F000")
        return "the schema lacks a table, column or function: run comeback-sync migrate, and "
               "compare hand-made changes with schema/*.sql";
    if (state.starts_with("23"))
        return "a constraint or trigger the migrations did not create, or data that breaks one: "
               "compare the tables with schema/*.sql";
    if (state == "25006") return "the server is read-only (a standby?): point database.conninfo at the primary";
    if (state.starts_with("53")) return "the database server is out of disk or memory";
    return "see the PostgreSQL log for the statement";
}

failure make(failure_kind kind, std::string message) {
    failure made;
    made.kind = kind;
    made.message = std::move(message);
    return made;
}

}  // namespace

std::optional<failure> classify_database_error(const std::exception& error, std::string_view database) {
    const std::string where(database.empty() ? std::string_view("the database") : database);
    const std::string what = first_line(error.what());
    auto lost = [&] { return make(failure_kind::database_lost, where + ": connection lost or timed out: " + what); };
    if (dynamic_cast<const stale_fetch_error*>(&error)) return make(failure_kind::stale_fetch, error.what());
    if (dynamic_cast<const database_unreachable*>(&error))
        return make(failure_kind::database_lost, error.what());
    if (dynamic_cast<const no_answer_error*>(&error))
        return make(failure_kind::database_lost, where + ": no answer: " + error.what());
    // Order matters: libpqxx's classes derive from one another.
    if (dynamic_cast<const pqxx::broken_connection*>(&error)) return lost();
    if (dynamic_cast<const pqxx::in_doubt_error*>(&error) ||
        dynamic_cast<const pqxx::statement_completion_unknown*>(&error)) {
        // The window's load is idempotent, so trying it again is safe either way.
        return make(failure_kind::database_lost, where + ": the commit's outcome is unknown: " + what);
    }
    if (dynamic_cast<const pqxx::transaction_rollback*>(&error))
        return make(failure_kind::database_conflict, where + ": transaction rolled back: " + what);
    if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
        std::string state = sql->sqlstate();
        // libpqxx 6.4 throws insufficient_privilege without its SQLSTATE.
        if (state.empty() && dynamic_cast<const pqxx::insufficient_privilege*>(&error)) state = "42501";
        if (is_lost_sqlstate(state)) return lost();
        // A statement prepared on this connection (load/prepared.hpp) whose
        // result a migration changed since: it fails the same way on this
        // connection for ever, so the connection goes, as a lost one does.
        if (state == "0A000" && what.find("cached plan must not change result type") != std::string::npos) {
            return make(failure_kind::database_lost,
                        where + ": a statement prepared on this connection no longer matches the schema "
                                "(migrated while it was open); the connection is opened anew: " + what);
        }
        if (auto timeout = timeout_of(state); !timeout.empty())
            return make(failure_kind::database_timeout, where + ": " + std::string(timeout) + ": " + what);
        if (state.starts_with("40"))
            return make(failure_kind::database_conflict, where + ": transaction rolled back: " + what);
        return make(failure_kind::database_refused,
                    where + " refused a statement (SQLSTATE " + (state.empty() ? "unknown" : state) +
                        "): " + what + ": " + std::string(what_to_check(state)));
    }
    // Any other runtime failure libpqxx reports comes from libpq's side of the wire.
    if (dynamic_cast<const pqxx::failure*>(&error)) return lost();
    return std::nullopt;
}

std::string describe_database(pqxx::connection& connection) {
    try {
        if (!connection.is_open()) return "the database";
        const char* name = connection.dbname();
        const char* host = connection.hostname();
        const char* port = connection.port();
        std::string text = "database " + std::string(name ? name : "?");
        // libpq reports a Unix socket's directory as the host.
        if (host && *host) text += std::string(" on ") + host + (port && *port ? std::string(":") + port : "");
        return to_storable_text(text);
    } catch (...) {
        return "the database";
    }
}

}  // namespace comeback
