// The cycle gate on its own: how many are inside, in what order the waiting
// get in, and a place given back while its holder waits.

#include "sync/cycle_gate.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace comeback;
namespace asio = boost::asio;

namespace {

// Enters, notes its name, and stays inside until `leave` says so.
asio::awaitable<void> visit(cycle_gate& gate, std::string name, std::vector<std::string>& entered,
                            const bool& leave, std::size_t& most_inside) {
    cycle_gate::pass pass = co_await gate.enter();
    entered.push_back(name);
    most_inside = std::max(most_inside, gate.inside());
    asio::steady_timer tick(co_await asio::this_coro::executor);
    while (!leave) {
        tick.expires_after(std::chrono::milliseconds(1));
        co_await tick.async_wait(asio::use_awaitable);
    }
}

}  // namespace

TEST_CASE("at most capacity customers are inside; the waiting get in first come, first served") {
    asio::io_context io;
    cycle_gate gate(io.get_executor(), 2);
    std::vector<std::string> entered;
    bool leave = false;
    std::size_t most_inside = 0;
    for (const char* name : {"a", "b", "c", "d", "e"}) {
        asio::co_spawn(io, visit(gate, name, entered, leave, most_inside), asio::detached);
    }
    io.run_for(std::chrono::milliseconds(50));
    CHECK(entered == std::vector<std::string>{"a", "b"});
    CHECK(gate.inside() == 2);
    leave = true;
    io.run();
    CHECK(entered == std::vector<std::string>{"a", "b", "c", "d", "e"});
    CHECK(most_inside == 2);
    CHECK(gate.peak() == 2);
    CHECK(gate.inside() == 0);
}

TEST_CASE("a pass that steps out lets the next one in, and steps in behind it") {
    asio::io_context io;
    cycle_gate gate(io.get_executor(), 1);
    std::vector<std::string> order;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        cycle_gate::pass pass = co_await gate.enter();
        order.push_back("first in");
        // Someone waits at the gate by now.
        asio::steady_timer wait(co_await asio::this_coro::executor, std::chrono::milliseconds(10));
        co_await wait.async_wait(asio::use_awaitable);
        pass.step_out();
        CHECK_FALSE(pass.inside());
        co_await pass.step_in();
        CHECK(pass.inside());
        order.push_back("first back");
    }, asio::detached);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        cycle_gate::pass pass = co_await gate.enter();
        order.push_back("second in");
        CHECK(gate.inside() == 1);
    }, asio::detached);
    io.run();
    CHECK(order == std::vector<std::string>{"first in", "second in", "first back"});
    CHECK(gate.inside() == 0);
    CHECK(gate.peak() == 1);
}

TEST_CASE("a moved pass is given back once, by its last holder") {
    asio::io_context io;
    cycle_gate gate(io.get_executor(), 1);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        cycle_gate::pass first = co_await gate.enter();
        cycle_gate::pass second = std::move(first);
        CHECK_FALSE(first.inside());
        CHECK(second.inside());
        first = std::move(second);
        CHECK(gate.inside() == 1);
    }, asio::detached);
    io.run();
    CHECK(gate.inside() == 0);
    // The place is free again.
    bool entered = false;
    asio::co_spawn(io.get_executor(), [&]() -> asio::awaitable<void> {
        cycle_gate::pass pass = co_await gate.enter();
        entered = true;
    }, asio::detached);
    io.restart();
    io.run();
    CHECK(entered);
}

TEST_CASE("the gate holds the request slots and the database sessions, and a quarter more waiting in line") {
    config cfg;
    cfg.database.pool_size = 10;
    cfg.vitec.max_concurrent_requests = 64;
    // 74 kept the request limiter waiting for customers between windows at
    // 500 requests a second: 92 keep a line at it.
    CHECK(cycle_capacity(cfg) == 92);
    cfg.database.pool_size = 2;
    cfg.vitec.max_concurrent_requests = 1;
    CHECK(cycle_capacity(cfg) == 3);
}
