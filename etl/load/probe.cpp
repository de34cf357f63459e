#include "load/probe.hpp"

#include "load/probe_sql.hpp"

#include <pqxx/pqxx>

namespace comeback {

std::optional<std::string> probe_database(pqxx::connection& connection) {
    pqxx::nontransaction tx{connection, "probe"};
    if (tx.exec1(sql::probe::in_recovery)[0].as<bool>()) {
        return "the server is a standby in recovery and refuses writes: point database.conninfo at the primary";
    }
    return std::nullopt;
}

}  // namespace comeback
