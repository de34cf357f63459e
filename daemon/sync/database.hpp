#pragma once
// Opening PostgreSQL connections for the daemon, and bringing the schema up to
// date at start. Connections are opened here and used through etl/load (all
// SQL lives there).

#include "load/pqxx_fwd.hpp"

#include <memory>

namespace comeback {

struct database_config;

// Opens a connection with database.conninfo (PG* environment variables fill
// the gaps). Throws pqxx::broken_connection with libpq's message, which names
// host and database but never a password.
std::unique_ptr<pqxx::connection> open_database(const database_config& config);

// What run and backfill do before any work: apply the embedded migrations to
// database.schema, unless database.auto_migrate is false, and log
// migrate.done. Throws migration_error (load/migrations.hpp) and pqxx
// exceptions.
void migrate_at_start(const database_config& config);

}  // namespace comeback
