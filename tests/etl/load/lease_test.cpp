#include "load/lease.hpp"

#include "support/database.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <chrono>
#include <thread>

using namespace comeback;
using namespace comeback::test;

TEST_CASE("a customer lease is held by one session at a time and released on request") {
    auto first = connect();
    auto second = connect();
    const auto schema = unique_schema_name();

    CHECK(try_acquire_customer_lease(*first, schema, "M1"));
    CHECK_FALSE(try_acquire_customer_lease(*second, schema, "M1"));
    // Other customers and other schemas are separate leases.
    CHECK(try_acquire_customer_lease(*second, schema, "M2"));
    CHECK(try_acquire_customer_lease(*second, schema + "_other", "M1"));

    release_customer_lease(*first, schema, "M1");
    CHECK(try_acquire_customer_lease(*second, schema, "M1"));
    CHECK_FALSE(try_acquire_customer_lease(*first, schema, "M1"));
}

TEST_CASE("a lease held by a session that dies is free for the next instance") {
    auto observer = connect();
    auto standby = connect();
    const auto schema = unique_schema_name();
    {
        auto active = connect();
        REQUIRE(try_acquire_customer_lease(*active, schema, "M1"));
        CHECK_FALSE(try_acquire_customer_lease(*standby, schema, "M1"));
        pqxx::nontransaction tx{*observer};
        tx.exec_params1("SELECT pg_terminate_backend($1)", active->backendpid());
    }
    // The server ends the killed session's locks as the backend exits; give it a moment.
    bool acquired = false;
    for (int attempt = 0; attempt < 100 && !acquired; ++attempt) {
        acquired = try_acquire_customer_lease(*standby, schema, "M1");
        if (!acquired) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(acquired);
}

TEST_CASE("releasing a lease this session does not hold is a logic error") {
    auto connection = connect();
    CHECK_THROWS_AS(release_customer_lease(*connection, unique_schema_name(), "M1"), std::logic_error);
}
