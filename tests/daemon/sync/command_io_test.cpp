// A command's io_context drops its pending work before the members that work
// refers to are destroyed, however the command is left: run and backfill hold
// their members in this order, and an exception escaping io_context::run()
// (std::bad_alloc from a handler outside every coroutine) used to leave
// suspended coroutines to be destroyed after the shutdown switch they
// unregister from, in a silent SIGSEGV.

#include "sync/command_io.hpp"
#include "sync/shutdown.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>

#include <new>

using namespace comeback;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Records whether `alive` was still true when the frame holding it went.
struct frame_witness {
    const bool* alive;
    bool* alive_at_destruction;
    ~frame_witness() { *alive_at_destruction = *alive; }
};

// Sets `alive` to false when destroyed: it stands for every member a
// coroutine refers to.
struct member_witness {
    bool* alive;
    ~member_witness() { *alive = false; }
};

// Shaped like backfill and runner: the io_context first, the members the
// coroutines use after it, pending work dropped in the destructor.
class command_shape {
public:
    command_shape(bool* alive) : members_{alive} {}
    ~command_shape() { io_.drop_pending_work(); }

    void run(bool* alive, bool* alive_at_destruction) {
        asio::co_spawn(io_, sleeper(alive, alive_at_destruction), asio::detached);
        // A handler outside every coroutine that fails: its exception leaves io_.run().
        asio::post(io_, [] { throw std::bad_alloc(); });
        io_.run();
    }

private:
    asio::awaitable<void> sleeper(bool* alive, bool* alive_at_destruction) {
        frame_witness witness{alive, alive_at_destruction};
        co_await shutdown_.sleep(1h);  // its frame unregisters from shutdown_ when destroyed
    }

    command_io_context io_;
    shutdown_signal shutdown_{io_.get_executor()};
    member_witness members_;
};

}  // namespace

TEST_CASE("an exception out of run() unwinds a command with its suspended coroutines destroyed first") {
    bool alive = true;
    bool alive_at_destruction = false;
    {
        command_shape command(&alive);
        CHECK_THROWS_AS(command.run(&alive, &alive_at_destruction), std::bad_alloc);
        CHECK(alive);
    }
    CHECK_FALSE(alive);
    CHECK(alive_at_destruction);  // the frame went while the members still existed
}

TEST_CASE("dropping pending work twice, then destroying the context, is harmless") {
    bool alive = true;
    bool alive_at_destruction = false;
    command_io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            frame_witness witness{&alive, &alive_at_destruction};
            shutdown_signal never(io.get_executor());
            co_await never.sleep(1h);
        },
        asio::detached);
    io.run_for(10ms);
    io.drop_pending_work();
    CHECK(alive_at_destruction);
    io.drop_pending_work();
}
