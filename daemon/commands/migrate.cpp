#include "commands/commands.hpp"

#include "config/config.hpp"
#include "exit_codes.hpp"
#include "load/migrations.hpp"
#include "observability/logging.hpp"
#include "sync/database.hpp"

#include <pqxx/pqxx>

namespace comeback {

int migrate_command(const command_line&, const config& cfg) {
    // Unreachable: database_unreachable or no_answer_error, which main() logs
    // as command.failed with exit 1, within connect_timeout (+ statement_timeout).
    database_connection connection(cfg.database);
    try {
        int applied = 0;
        with_deadline(connection, call_limit(cfg.database),
                      [&](pqxx::connection& c) { applied = migrate(c, cfg.database.schema); });
        log_event(spdlog::level::info, "migrate.done",
                  {{"schema", cfg.database.schema}, {"applied", applied}});
        return exit_ok;
    } catch (const migration_error& error) {
        // A changed applied migration or a database newer than this binary:
        // an operator has to look, running on would be wrong.
        log_event(spdlog::level::err, "migrate.refused",
                  {{"schema", cfg.database.schema}, {"error", error.what()}});
        return exit_windows_failed;
    }
}

}  // namespace comeback
