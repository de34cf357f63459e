#pragma once
// Applying schema/*.sql (embedded at build time) to a database schema.

#include "load/pqxx_fwd.hpp"

#include <stdexcept>
#include <string_view>

namespace comeback {

// The database and this binary disagree about the schema's history: an applied
// migration was edited afterwards, or the database has versions this binary does
// not know. what() names the migrations and says what to do.
class migration_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Brings `schema` (created when missing) up to the newest embedded migration in
// one transaction, recording version, name, checksum and applied_at in
// <schema>.schema_migrations. Concurrent callers are serialized by a
// transaction advisory lock; the later one finds the work done. A schema that
// is up to date is only read (one statement, no lock), after the session's
// search_path is set to it. Returns how many migrations it applied (0 when up
// to date).
// Throws migration_error (refusals, nothing applied), std::invalid_argument (a
// schema name that is not a plain identifier) and pqxx exceptions (the
// database failed; the transaction is rolled back).
int migrate(pqxx::connection& connection, std::string_view schema);

// The newest migration version this binary carries.
int newest_known_migration();

}  // namespace comeback
