#pragma once
// Running a named statement (statement.hpp) as a prepared statement of its
// connection. The server parses and plans a statement once per connection
// instead of at every call; a load of a small window runs a score of
// statements, and planning them anew each time cost more server time than
// running them. The connection registers the statement under its name on first
// use (libpqxx sends the Parse then), so names are unique across the units
// (tests/etl/load/statements_test.cpp). A prepared statement belongs to the
// session, like the staging tables: one more reason the daemon needs
// session-level connections (docs/operations.md, "Connection poolers").
//
// Statements PREPARE does not take (settings, DDL, several statements in one
// text) are run with tx.exec as before.

#include "load/statement.hpp"

#include <pqxx/pqxx>

#include <string>
#include <string_view>
#include <utility>

namespace comeback::sql {

// Registers `s` with the connection under its name and returns the name;
// a statement known with this text already costs nothing. libpqxx prepares it
// on the server when it first runs (or at prepare_now()).
inline std::string register_statement(pqxx::connection_base& connection, const statement& s) {
    std::string name(s.name());
    connection.prepare(name, std::string(s.text()));
    return name;
}

// The statement's rows.
template <typename... Args>
pqxx::result exec(pqxx::transaction_base& tx, const statement& s, Args&&... args) {
    return tx.exec_prepared(register_statement(tx.conn(), s), std::forward<Args>(args)...);
}

// The one row statement `s` returned, or pqxx::unexpected_rows.
inline pqxx::row single_row(const pqxx::result& rows, const statement& s) {
    if (rows.size() != 1) {
        throw pqxx::unexpected_rows(std::string(s.name()) + " returned " + std::to_string(rows.size()) +
                                    " rows where one was expected");
    }
    return rows.front();
}

// Statement `s` returned no rows, or pqxx::unexpected_rows.
inline void no_rows(const pqxx::result& rows, const statement& s) {
    if (!rows.empty()) {
        throw pqxx::unexpected_rows(std::string(s.name()) + " returned " + std::to_string(rows.size()) +
                                    " rows where none was expected");
    }
}

// Exactly one row, or pqxx::unexpected_rows.
template <typename... Args>
pqxx::row exec1(pqxx::transaction_base& tx, const statement& s, Args&&... args) {
    return single_row(exec(tx, s, std::forward<Args>(args)...), s);
}

// For the statements run outside a transaction block (the fetch ticket, an
// unparsed confirmation): unqualified names are then the session's
// search_path, set here to the schema (checked by check_schema_name()) once
// per connection. libpqxx remembers what it set, so later calls cost no round
// trip.
inline void use_schema_for_session(pqxx::connection& connection, std::string_view schema) {
    const std::string wanted = connection.quote_name(std::string(schema));
    if (connection.get_variable("search_path") != wanted) connection.set_variable("search_path", wanted);
}

// No rows, or pqxx::unexpected_rows.
template <typename... Args>
void exec0(pqxx::transaction_base& tx, const statement& s, Args&&... args) {
    no_rows(exec(tx, s, std::forward<Args>(args)...), s);
}

}  // namespace comeback::sql
