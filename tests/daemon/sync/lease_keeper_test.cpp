// Two lease keepers, each with its own session on the real PostgreSQL, as two
// `run` instances would hold them: they split the customers fairly, keep a
// busy customer, and the survivor takes over when the other's session dies.

#include "sync/lease_keeper.hpp"

#include "sync_fixture.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace comeback;
using namespace comeback::test;

namespace {

const std::vector<std::string> customers{"M1", "M2", "M3", "M4"};

struct instance {
    instance(boost::asio::io_context& io, const migrated_schema& db, const std::string& name)
        : io(io),
          application_name(db.application_name() + "-" + name),
          workers(io.get_executor(), database_config{"application_name=" + application_name, db.name()}, 1, 1),
          leases(workers, db.name(), [this](const std::string& id) { return busy.contains(id); }) {
        leases.set_customers(customers);
    }

    void round() { run(io, leases.round()); }

    std::set<std::string> held() const {
        std::set<std::string> ids;
        for (const auto& id : customers) {
            if (leases.held(id)) ids.insert(id);
        }
        return ids;
    }

    boost::asio::io_context& io;
    std::string application_name;
    std::set<std::string> busy;
    db_workers workers;
    lease_keeper leases;
};

// Two instances on one schema, each started by one lease round.
struct two_instances {
    migrated_schema db;
    boost::asio::io_context io;
    instance a{io, db, "a"};
    instance b{io, db, "b"};
};

}  // namespace

TEST_CASE("two instances split the customers fairly and never hold one twice") {
    two_instances both;
    instance& a = both.a;
    instance& b = both.b;

    a.round();
    CHECK(a.leases.instances() == 1);
    CHECK(a.held().size() == 4);  // alone: every customer

    b.round();
    CHECK(b.leases.instances() == 2);
    CHECK(b.held().empty());  // all taken; b waits for a to give back

    a.round();
    CHECK(a.leases.instances() == 2);
    CHECK(a.held().size() == 2);  // its fair share: ceil(4 / 2)

    b.round();
    CHECK(b.held().size() == 2);
    std::set<std::string> all = a.held();
    const std::set<std::string> of_b = b.held();
    all.insert(of_b.begin(), of_b.end());
    CHECK(all.size() == 4);  // disjoint, and together every customer
}

TEST_CASE("a customer in the middle of a window keeps its lease above the fair share") {
    two_instances both;
    instance& a = both.a;
    instance& b = both.b;
    a.round();
    b.round();
    a.busy = a.held();

    a.round();
    CHECK(a.held().size() == 4);  // nothing given back mid-window

    a.busy.clear();
    a.round();
    CHECK(a.held().size() == 2);
}

TEST_CASE("when one instance's session dies, the other takes every customer over and the dead one holds none") {
    two_instances both;
    instance& a = both.a;
    instance& b = both.b;
    for (int round = 0; round < 2; ++round) {
        a.round();
        b.round();
    }
    REQUIRE(b.held().size() == 2);

    kill_sessions(a.application_name);
    b.round();
    CHECK(b.leases.instances() == 1);
    CHECK(b.held().size() == 4);

    // The dead instance learns it at its next round: every lease is dropped.
    a.round();
    CHECK(a.held().empty());
}

TEST_CASE("a customer taken out of the configuration is given back at the next round, unless busy") {
    two_instances both;
    instance& a = both.a;
    a.round();
    REQUIRE(a.held().size() == 4);

    // A reload without M2 and M4; M4 is in the middle of a window.
    a.busy.insert("M4");
    a.leases.set_customers({"M3", "M1"});
    a.round();
    CHECK(a.held() == std::set<std::string>{"M1", "M3", "M4"});

    a.busy.clear();
    a.round();
    CHECK(a.held() == std::set<std::string>{"M1", "M3"});

    // Given back for real: another instance configured with them takes them.
    both.b.round();
    CHECK(both.b.held() == std::set<std::string>{"M2", "M4"});
}
