#include "sync/database.hpp"

#include "config/config.hpp"

#include <pqxx/pqxx>

namespace comeback {

std::unique_ptr<pqxx::connection> open_database(const database_config& config) {
    return std::make_unique<pqxx::connection>(config.conninfo);
}

}  // namespace comeback
