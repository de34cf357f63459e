#pragma once
// Fencing: a window's load commits only if no fetch of the same window that
// began later has committed first. Every fetch takes a ticket before it sends
// its request: the next number of its customer's counter in the database,
// committed durably, so tickets order fetches by when they began, whatever
// the clocks of the hosts or the server say and across a server's crash. The
// load compares its ticket with the one the window's last committed load had,
// under the customer's load lock; a lower one is stale and the load is
// dropped (stale_fetch_error), otherwise its ledger row records its own
// (complete_load::ticket in ledger.hpp).

#include "load/ledger.hpp"
#include "load/pqxx_fwd.hpp"

#include <cstdint>
#include <functional>
#include <string_view>

namespace comeback {

// Takes the customer's next ticket in its own transaction, committed durably
// (registering the customer in sync_customers first when needed). `also`, when
// given, runs in the same transaction (search_path set), so what a fetch reads
// of the ledger before it begins costs no transaction of its own. Throws
// std::invalid_argument (a bad schema name) and pqxx exceptions.
fetch_ticket take_fetch_ticket(pqxx::connection& connection, std::string_view schema,
                               std::string_view customer_id,
                               const std::function<void(pqxx::transaction_base&)>& also = {});

// Inside a window loader's transaction, under the customer's lock: throws
// stale_fetch_error (load/database_failure.hpp) when the window's last
// committed load had a higher ticket than `ticket`.
void check_fetch_ticket(pqxx::transaction_base& tx, const window_key& key, fetch_ticket ticket);

}  // namespace comeback
