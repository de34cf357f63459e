#pragma once
// Splitting customers between several `run` instances on one database.
//
// Each instance holds, on one dedicated connection, an instance slot (the
// lease of the reserved id "#instance-slot/<n>", n < max_instances) and the
// leases of the customers it works. Every round it counts the live instances
// by probing the other slots, takes free customer leases up to its fair share
// (ceil(customers / instances)), and gives back idle customers above it. A
// dead instance's session ends, PostgreSQL drops its locks, and the next
// round of a survivor takes its customers over. If the lease connection
// itself is lost, every lease is lost with it: held() turns false for all.
//
// Used from the io_context thread only.

#include "sync/db_workers.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
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
    std::size_t held_count() const;
    unsigned instances() const { return instances_; }

private:
    boost::asio::awaitable<void> round_on_connection();
    void forget_all();

    db_workers::session session_;
    std::string schema_;
    std::function<bool(const std::string&)> busy_;
    std::vector<std::string> customers_;
    std::map<std::string, bool> held_;  // customer id -> held
    std::optional<unsigned> slot_;
    unsigned instances_ = 1;
};

}  // namespace comeback
