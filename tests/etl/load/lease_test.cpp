// Leases on the real PostgreSQL: one session at a time per lease, free again
// when the session dies, and key spaces that never meet: not two customers
// whose ids hash alike, not a customer named like an instance slot, not two
// schemas, not the loader's own lock.

#include "load/lease.hpp"

#include "load/migrations.hpp"
#include "support/database.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

using namespace comeback;
using namespace comeback::test;

namespace {

// Two customer ids whose 32-bit hashtext is the same: they shared one lease
// when leases were keyed by the hash.
constexpr const char* colliding_a = "M4134";
constexpr const char* colliding_b = "M18375";

struct leased_schema : scratch_schema {
    leased_schema() { migrate(connection(), name()); }
};

}  // namespace

TEST_CASE("a customer lease is held by one session at a time and released on request") {
    leased_schema db;
    auto first = connect();
    auto second = connect();

    const lease_id m1 = customer_lease(*first, db.name(), "M1");
    CHECK(try_acquire_lease(*first, m1));
    CHECK_FALSE(try_acquire_lease(*second, customer_lease(*second, db.name(), "M1")));
    // Other customers are separate leases.
    CHECK(try_acquire_lease(*second, customer_lease(*second, db.name(), "M2")));

    release_lease(*first, m1);
    CHECK(try_acquire_lease(*second, m1));
    CHECK_FALSE(try_acquire_lease(*first, m1));
}

TEST_CASE("a customer keeps its lease number, and every customer gets its own") {
    leased_schema db;
    const lease_id once = customer_lease(db.connection(), db.name(), "M1");
    CHECK(customer_lease(db.connection(), db.name(), "M1").key == once.key);
    CHECK(customer_lease(*connect(), db.name(), "M1").key == once.key);
    CHECK(customer_lease(db.connection(), db.name(), "M2").key != once.key);
    CHECK(once.name == "customer M1");
}

TEST_CASE("a fleet's leases are looked up together, each the key it has alone, and tried in one statement") {
    leased_schema db;
    const lease_id known = customer_lease(db.connection(), db.name(), "M2");
    std::vector<std::string> fleet;
    for (int i = 0; i < 500; ++i) fleet.push_back("F" + std::to_string(i));
    fleet.push_back("M2");
    fleet.push_back("tab\tand \"quote\"");

    const auto leases = customer_leases(db.connection(), db.name(), fleet);
    REQUIRE(leases.size() == fleet.size());
    CHECK(leases[500].key == known.key);
    CHECK(leases[501].name == "customer tab\tand \"quote\"");
    std::set<std::int64_t> distinct;
    for (std::size_t i = 0; i < fleet.size(); ++i) {
        INFO(fleet[i]);
        distinct.insert(leases[i].key);
        CHECK(leases[i].key == customer_lease(*connect(), db.name(), fleet[i]).key);
    }
    CHECK(distinct.size() == fleet.size());

    // Another session holds two of them: those two are not taken, every other one is.
    auto other = connect();
    REQUIRE(try_acquire_lease(*other, leases[7]));
    REQUIRE(try_acquire_lease(*other, leases[500]));
    const auto taken = try_acquire_leases(db.connection(), leases);
    REQUIRE(taken.size() == leases.size());
    for (std::size_t i = 0; i < leases.size(); ++i) {
        INFO(fleet[i]);
        CHECK(taken[i] == (i != 7 && i != 500));
    }
    CHECK(try_acquire_leases(db.connection(), {}).empty());

    // Released together: the other session takes every one of them.
    std::vector<lease_id> mine;
    for (std::size_t i = 0; i < leases.size(); ++i) {
        if (taken[i]) mine.push_back(leases[i]);
    }
    release_leases(db.connection(), mine);
    const auto retaken = try_acquire_leases(*other, mine);
    CHECK(std::count(retaken.begin(), retaken.end(), true) == static_cast<long>(mine.size()));
}

TEST_CASE("releasing leases this session does not hold names them, and releases the others") {
    leased_schema db;
    const auto leases = customer_leases(db.connection(), db.name(), {"M1", "M2", "M3"});
    REQUIRE(try_acquire_lease(db.connection(), leases[1]));
    try {
        release_leases(db.connection(), leases);
        FAIL("no logic_error");
    } catch (const std::logic_error& error) {
        CHECK(std::string(error.what()) ==
              "release_leases: this session does not hold the lease of customer M1, customer M3");
    }
    // M2 was released all the same.
    CHECK(try_acquire_lease(*connect(), leases[1]));
}

TEST_CASE("two customer ids whose hashes collide never share a lease") {
    leased_schema db;
    {
        // The premise: PostgreSQL's 32-bit hash does not tell them apart.
        pqxx::read_transaction tx{db.connection()};
        REQUIRE(tx.exec_params1("SELECT hashtext($1) = hashtext($2)", colliding_a, colliding_b)[0].as<bool>());
    }
    auto first = connect();
    auto second = connect();
    REQUIRE(try_acquire_lease(*first, customer_lease(*first, db.name(), colliding_a)));
    CHECK(try_acquire_lease(*second, customer_lease(*second, db.name(), colliding_b)));
}

TEST_CASE("a customer id spelt like an instance slot is a customer like any other") {
    leased_schema db;
    auto instance = connect();
    auto other = connect();
    const lease_id slot = instance_slot_lease(*instance, db.name(), 3);
    REQUIRE(try_acquire_lease(*instance, slot));
    CHECK(slot.name == "instance slot 3");
    // The id the slots once used as their lease id takes nothing from the slot.
    CHECK(try_acquire_lease(*other, customer_lease(*other, db.name(), "#instance-slot/3")));
    CHECK_FALSE(try_acquire_lease(*other, instance_slot_lease(*other, db.name(), 3)));
}

TEST_CASE("the same customer in two schemas holds two leases") {
    leased_schema one;
    leased_schema two;
    auto first = connect();
    auto second = connect();
    REQUIRE(try_acquire_lease(*first, customer_lease(*first, one.name(), "M1")));
    CHECK(try_acquire_lease(*second, customer_lease(*second, two.name(), "M1")));
    for (unsigned slot : {0u, 31u}) {
        REQUIRE(try_acquire_lease(*first, instance_slot_lease(*first, one.name(), slot)));
        CHECK(try_acquire_lease(*second, instance_slot_lease(*second, two.name(), slot)));
    }
}

TEST_CASE("a lease and the loader's lock on the same customer are separate locks") {
    leased_schema db;
    auto keeper = connect();
    auto loader = connect();
    REQUIRE(try_acquire_lease(*keeper, customer_lease(*keeper, db.name(), "M1")));
    // The loader's transaction lock (window_loader_sql.hpp), taken without waiting.
    pqxx::work tx{*loader};
    CHECK(tx.exec_params1("SELECT pg_try_advisory_xact_lock(hashtext('comeback-sync/load/' || $1), hashtext($2))",
                          db.name(), "M1")[0]
              .as<bool>());
}

TEST_CASE("a lease held by a session that dies is free for the next instance") {
    leased_schema db;
    auto observer = connect();
    auto standby = connect();
    const lease_id m1 = customer_lease(*standby, db.name(), "M1");
    {
        auto active = connect();
        REQUIRE(try_acquire_lease(*active, m1));
        CHECK_FALSE(try_acquire_lease(*standby, m1));
        pqxx::nontransaction tx{*observer};
        tx.exec_params1("SELECT pg_terminate_backend($1)", active->backendpid());
    }
    // The server ends the killed session's locks as the backend exits; give it a moment.
    bool acquired = false;
    for (int attempt = 0; attempt < 100 && !acquired; ++attempt) {
        acquired = try_acquire_lease(*standby, m1);
        if (!acquired) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(acquired);
}

TEST_CASE("releasing a lease this session does not hold is a logic error") {
    leased_schema db;
    const lease_id m1 = customer_lease(db.connection(), db.name(), "M1");
    CHECK_THROWS_AS(release_lease(db.connection(), m1), std::logic_error);
}
