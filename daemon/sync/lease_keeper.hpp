#pragma once
// Splitting customers between several `run` instances on one database.
//
// Each instance holds, on one dedicated connection, an instance slot (slot n <
// max_instances, in the schema's lease space apart from every customer's: see
// load/lease.hpp) and the leases of the customers it works. Every round it counts the live instances
// by probing the other slots, takes free customer leases up to its fair share
// (ceil(customers / instances)), and gives back idle customers above it. A
// dead instance's session ends, PostgreSQL drops its locks, and the next
// round of a survivor takes its customers over. If the lease connection
// itself is lost, every lease is lost with it: held() turns false for all,
// and every grant() changes, so windows begun under the lost leases stop
// (window_context::still_held) even when the next round takes them again.
//
// Used from the io_context thread only.

#include "load/lease.hpp"
#include "sync/db_workers.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

class lease_keeper {
public:
    static constexpr unsigned max_instances = 32;

    // `busy` says whether a customer is in the middle of a window right now
    // (its lease is then kept even above the fair share).
    lease_keeper(db_workers& db, std::string schema, std::function<bool(const std::string&)> busy);

    // The customers this instance should work (after a reload, the new list).
    void set_customers(std::vector<std::string> customer_ids);

    // One round: keep the slot, count instances, take or give back leases.
    // Never throws: a database failure drops every lease and is logged.
    boost::asio::awaitable<void> round();

    // Gives back every lease and the slot (on shutdown). Never throws.
    boost::asio::awaitable<void> release_all();

    bool held(const std::string& customer_id) const;
    // A number for the hold of the customer's lease this instance has now:
    // the same while it holds on, another after any loss, 0 when not held.
    std::uint64_t grant(const std::string& customer_id) const;
    std::size_t held_count() const;
    unsigned instances() const { return instances_; }

    // Whether the lease connection closed since the last round (the server
    // restarted, or ended the session): the leases went with it, and a round
    // should run now. Never blocks; reads no more than what already arrived.
    bool connection_lost();

private:
    boost::asio::awaitable<void> round_on_connection();
    void forget_all();
    bool configured(std::string_view customer_id) const;
    // The leases of `customer_ids`, in order; the keys customer_keys_ lacks
    // come from one transaction (load/lease.hpp, customer_leases).
    std::vector<lease_id> leases_of(pqxx::connection& connection, const std::vector<std::string>& customer_ids);
    const lease_id& slot_key(pqxx::connection& connection, unsigned slot);

    db_workers::session session_;
    std::string schema_;
    std::function<bool(const std::string&)> busy_;
    std::vector<std::string> customers_;
    // customers_, sorted: a round asks of every held customer whether it is
    // still configured, and a linear search made that quadratic in the fleet.
    std::vector<std::string_view> configured_;
    std::map<std::string, std::uint64_t> held_;  // customer id -> grant (0: not held)
    std::uint64_t next_grant_ = 1;
    std::map<std::string, lease_id> customer_keys_;  // of this connection's schema
    std::map<unsigned, lease_id> slot_keys_;
    std::optional<unsigned> slot_;
    unsigned instances_ = 1;
};

}  // namespace comeback
