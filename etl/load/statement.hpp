#pragma once
// A named SQL statement of etl/load. Each unit keeps its statements in one
// header (ledger_sql.hpp, window_loader_sql.hpp, lease_sql.hpp,
// migrations_sql.hpp), written as a reader could paste them into psql: the
// whole statement, its columns written out, parameters as $n. A statement
// that must vary is two statements. Unqualified table names are the configured
// schema's: every transaction first sets search_path (use_schema below), and
// the statements run outside a transaction block, each a transaction of its
// own (the fetch ticket, a customer's plan, an unparsed confirmation), run on
// the session's search_path, which use_schema_for_session (prepared.hpp) sets.
// tests/etl/load/statements_test.cpp prepares every statement listed in the
// units' `statements` arrays against a freshly migrated schema.

#include <array>
#include <string>
#include <string_view>

namespace comeback::sql {

class statement {
public:
    // The text is written from the line after R"sql( to the line before )sql";
    // the newlines around it are not part of the statement.
    constexpr statement(std::string_view name, std::string_view text)
        : name_(name), text_(trim_newlines(text)) {}

    constexpr std::string_view name() const { return name_; }
    constexpr std::string_view text() const { return text_; }
    // libpqxx takes statements as std::string.
    operator std::string() const { return std::string(text_); }

private:
    static constexpr std::string_view trim_newlines(std::string_view text) {
        while (!text.empty() && text.front() == '\n') text.remove_prefix(1);
        while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
        return text;
    }

    std::string_view name_;
    std::string_view text_;
};

// $1: the schema name, checked by check_schema_name(). For this transaction
// only, unqualified names are the schema's tables (the temporary schema and
// pg_catalog are searched as always).
inline constexpr statement use_schema{"use_schema", R"sql(
SELECT set_config('search_path', quote_ident($1), true)
)sql"};

inline constexpr std::array shared_statements{use_schema};

}  // namespace comeback::sql
