#pragma once
// The migrator's statements (see migrations.hpp); the migrations themselves
// are schema/*.sql, embedded at build time.

#include "load/statement.hpp"

namespace comeback::sql::migrations {

// IF NOT EXISTS would otherwise print a notice on every start.
inline constexpr statement quiet_notices{"quiet_notices", R"sql(
SET LOCAL client_min_messages TO warning
)sql"};

// Serializes migrators of one schema ($1) across the database.
inline constexpr statement lock{"lock", R"sql(
SELECT pg_advisory_xact_lock(hashtext('comeback-sync/migrate'), hashtext($1))
)sql"};

// The schema's name ($1) for create_schema, for this transaction only.
inline constexpr statement name_schema{"name_schema", R"sql(
SELECT set_config('comeback_sync.schema', $1, true)
)sql"};

// A schema name cannot be a parameter of CREATE SCHEMA: the server quotes the
// one name_schema set.
inline constexpr statement create_schema{"create_schema", R"sql(
DO $$
BEGIN
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', current_setting('comeback_sync.schema'));
END
$$
)sql"};

inline constexpr statement create_migrations_table{"create_migrations_table", R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
)sql"};

inline constexpr statement read_applied{"read_applied", R"sql(
SELECT version, name, checksum FROM schema_migrations
)sql"};

inline constexpr statement record_applied{"record_applied", R"sql(
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)
)sql"};

inline constexpr std::array statements{quiet_notices, lock,         name_schema,
                                       create_schema, create_migrations_table,
                                       read_applied,  record_applied};

}  // namespace comeback::sql::migrations
