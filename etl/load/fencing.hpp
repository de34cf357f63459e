#pragma once
// Fencing: a window's load commits only if no fetch of the same window that
// began later has committed first. Every fetch takes a ticket before it sends
// its request: the next number of its customer's counter in the database,
// committed durably, so tickets order fetches by when they began, whatever
// the clocks of the hosts or the server say and across a server's crash. The
// load compares its ticket with the one the window's last committed load had,
// under the customer's load lock; a ticket no higher than that is stale and
// the load is dropped (stale_fetch_error), otherwise its ledger row records
// its own (complete_load::ticket in ledger.hpp).
//
// A re-fetch that may confirm its window from the response's digest alone
// (its last load recorded one) takes no ticket: a confirmation changes no
// data, so which fetch began first does not matter to it, and it confirms only
// if no load committed on the window since its statement began
// (confirm_unparsed in window_loader.hpp). It records as the window's ticket
// the counter's value when it confirms: every fetch that took its ticket
// before then, which may have begun before the re-fetch, is dropped should it
// commit later; one that took it after began after the re-fetch and is newer.
// Such a response that does not confirm is never loaded: the window is
// fetched again, with a ticket (daemon/sync/window_job.cpp).
//
// So does the first load of a window the turn's ledger says was never loaded
// (load_options::first_load_unticketed): it loads only if, under the lock,
// the window still has no committed load, and records the counter as it
// stands, as a confirmation does, for the same reason. Should a load of the
// window have committed in between, it writes nothing (loaded_meanwhile,
// load/database_failure.hpp) and the window is fetched again, with a ticket.

#include "load/ledger.hpp"
#include "load/pqxx_fwd.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace comeback {

// A fetch's ticket, and the size of the response its window's last complete
// load read when that load recorded a response digest (none otherwise: never
// loaded, or loaded before response digests).
struct taken_ticket {
    fetch_ticket ticket = 0;
    std::optional<std::uint64_t> last_response_bytes;
};

// Takes the next ticket of the window's customer in a statement that is its
// own transaction, committed durably (registering the customer in
// sync_customers first when needed), and reads what the fetch needs of the
// window's ledger row in the same statement. Sets the session's search_path to
// `schema` the first time on a connection. Call it outside any transaction.
// Throws std::invalid_argument (a bad schema name) and pqxx exceptions.
taken_ticket take_fetch_ticket(pqxx::connection& connection, std::string_view schema,
                               const window_key& key);

// Under the customer's lock, with the ticket of the window's last committed
// load (last_load::ticket): throws stale_fetch_error
// (load/database_failure.hpp) when that is not lower than `ticket`.
void check_fetch_ticket(const window_key& key, fetch_ticket ticket,
                        std::optional<fetch_ticket> committed);

// Returns once every transaction the server committed before it, lazily or
// not, is on disk (sql::fencing::durable_point): WAL is written in order, so
// one durable commit makes all the earlier ones durable. For whoever loaded
// with load_options::commit_lazily, before it says its loads are done for
// good (run's stop). One round trip on any connection; call it outside any
// transaction. Throws pqxx exceptions.
void make_durable(pqxx::connection& connection);

}  // namespace comeback
