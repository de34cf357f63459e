#include "sync/database.hpp"

#include "config/config.hpp"
#include "load/migrations.hpp"
#include "observability/logging.hpp"

#include <pqxx/pqxx>

namespace comeback {

std::unique_ptr<pqxx::connection> open_database(const database_config& config) {
    return std::make_unique<pqxx::connection>(config.conninfo);
}

void migrate_at_start(const database_config& config) {
    if (!config.auto_migrate) return;
    auto connection = open_database(config);
    const int applied = migrate(*connection, config.schema);
    log_event(spdlog::level::info, "migrate.done", {{"schema", config.schema}, {"applied", applied}});
}

}  // namespace comeback
