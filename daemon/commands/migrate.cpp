#include "commands/commands.hpp"

#include "config/config.hpp"
#include "exit_codes.hpp"
#include "load/migrations.hpp"
#include "observability/logging.hpp"
#include "sync/database.hpp"

#include <pqxx/pqxx>

namespace comeback {

int migrate_command(const command_line&, const config& cfg) {
    auto connection = open_database(cfg.database);
    try {
        const int applied = migrate(*connection, cfg.database.schema);
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
