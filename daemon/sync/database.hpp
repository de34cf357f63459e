#pragma once
// Opening PostgreSQL connections for the daemon. Connections are opened here
// and used through etl/load (all SQL lives there).

#include "load/pqxx_fwd.hpp"

#include <memory>


namespace comeback {

struct database_config;

// Opens a connection with database.conninfo (PG* environment variables fill
// the gaps). Throws pqxx::broken_connection with libpq's message, which names
// host and database but never a password.
std::unique_ptr<pqxx::connection> open_database(const database_config& config);

}  // namespace comeback
