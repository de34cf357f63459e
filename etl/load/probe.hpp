#pragma once
// Whether the database can take the daemon's work: the probe behind /healthz,
// `comeback_sync_database_up` and `status`.

#include "load/pqxx_fwd.hpp"

#include <optional>
#include <string>

namespace comeback {

// One round trip. Returns why the database cannot take loads although it
// answered (a standby in recovery), or nullopt when it can. Throws pqxx
// exceptions when it does not answer.
std::optional<std::string> probe_database(pqxx::connection& connection);

}  // namespace comeback
