// Responses held unparsed: the limits they are held within, and the buffers
// of finished ones that serve the next while windows are in flight.

#include "sync/response_hold.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <span>
#include <string>

using namespace comeback;

namespace {

const std::string mib(1024 * 1024, 'x');

}  // namespace

TEST_CASE("a response is held within its own limit and the total over all responses") {
    response_hold hold;
    hold.per_response = 3 * 1024 * 1024;
    hold.total = 5 * 1024 * 1024;
    held_response a(&hold, 0);
    CHECK(a.keep(mib));
    CHECK(a.keep(mib));
    CHECK(a.keep(mib));
    CHECK(hold.held == 3 * mib.size());
    CHECK_FALSE(a.keep("y"));  // past per_response: no longer held
    CHECK_FALSE(a.holding());
    CHECK(a.bytes().size() == 3 * mib.size());  // what was held stays, to be parsed

    held_response b(&hold, 0);
    CHECK(b.keep(mib));
    CHECK(b.keep(mib));
    CHECK_FALSE(b.keep(mib));  // past the total
    CHECK(hold.peak == 5 * mib.size());
    const held_bytes taken = b.take();
    CHECK(taken.size() == 2 * mib.size());
    CHECK(hold.held == 3 * mib.size());
    a.release();
    CHECK(hold.held == 0);
}

TEST_CASE("a finished response's buffer serves the next while any is in flight, and none is kept after") {
    response_hold hold;
    auto in_flight = std::make_unique<held_response>(&hold, 0);  // another window's

    const char* first_buffer = nullptr;
    {
        held_response first(&hold, 2 * mib.size());
        REQUIRE(first.keep(mib));
        first_buffer = first.bytes().data();
    }
    CHECK(hold.held == 0);
    REQUIRE(hold.spare.size() == 1);
    CHECK(hold.spare_bytes >= 2 * mib.size());
    {
        held_response second(&hold, 2 * mib.size());
        REQUIRE(second.keep(mib));
        REQUIRE(second.keep(mib));
        CHECK(second.bytes().data() == first_buffer);  // the same memory, not a new mapping
        CHECK(hold.spare.empty());
        CHECK(hold.spare_bytes == 0);
    }
    SECTION("a spare smaller than a response does not serve it") {
        held_response larger(&hold, 3 * mib.size());
        REQUIRE(larger.keep(mib));
        CHECK(hold.spare.size() == 1);
    }
    SECTION("spares and what is held stay within the total") {
        // The spare: 2 MiB asked for, and a quarter more.
        REQUIRE(hold.spare_bytes < 3 * mib.size());
        hold.total = 4 * mib.size();
        held_response big(&hold, 3 * mib.size());  // too large for the spare
        REQUIRE(big.keep(mib));
        CHECK(hold.spare.size() == 1);  // 1 MiB held + the spare: room for both
        REQUIRE(big.keep(mib));
        CHECK(hold.spare.empty());  // the spare made room for what is held
        CHECK(hold.held + hold.spare_bytes <= hold.total);
    }
    SECTION("the last response to go frees every spare") {
        in_flight.reset();
        CHECK(hold.holders == 0);
        CHECK(hold.spare.empty());
        CHECK(hold.spare_bytes == 0);
    }
}

TEST_CASE("a small buffer is not kept, and a hold of none keeps nothing") {
    response_hold hold;
    held_response in_flight(&hold, 0);
    {
        held_response small(&hold, 0);
        REQUIRE(small.keep("[1,2,3]"));
    }
    CHECK(hold.spare.empty());
    held_response none(nullptr, 1024);
    CHECK_FALSE(none.holding());
    CHECK_FALSE(none.keep("[]"));
}

TEST_CASE("a held buffer grows by doubling but never past the response's own limit") {
    response_hold hold;
    hold.per_response = 3 * 1024 * 1024;
    held_response a(&hold, 0);
    for (int i = 0; i < 3; ++i) REQUIRE(a.keep(mib));  // 1.25 MiB first, then 2.5, then 5 uncapped
    const held_bytes taken = a.take();
    CHECK(taken.size() == hold.per_response);
    CHECK(taken.capacity() <= hold.per_response);
}

TEST_CASE("bytes read into the room offered are held where they are, within both limits") {
    response_hold hold;
    hold.per_response = 3 * 1024 * 1024;
    hold.total = 4 * 1024 * 1024;
    {
        // Of unknown size: a small first room, not the read size asked for
        // (a fleet's responses are a few KB).
        held_response small(&hold, 0);
        CHECK(small.room(64 * 1024).size() < 16 * 1024);
    }
    held_response a(&hold, mib.size());  // as large as the last response
    std::span<char> room = a.room(mib.size());
    REQUIRE(room.size() == mib.size());
    CHECK(hold.held == mib.size());  // counted while the read is in progress
    std::memcpy(room.data(), mib.data(), mib.size());
    CHECK(a.keep(std::string_view(room.data(), 1000)));  // a read that brought less
    CHECK(a.bytes().data() == room.data());              // kept in place, not copied
    CHECK(hold.held == 1000);                            // the rest of the room given back

    // A chunk that starts inside the room (the client dropped a byte order
    // mark) is moved to the front of it.
    room = a.room(10);
    REQUIRE(room.size() == 10);
    std::memcpy(room.data(), "\xEF\xBB\xBF[1,2]", 8);
    CHECK(a.keep(std::string_view(room.data() + 3, 5)));
    CHECK(a.bytes().substr(1000) == "[1,2]");

    // Rooms stop at the response's own limit (a full buffer grows, up to it)...
    for (std::span<char> more = a.room(mib.size()); !more.empty(); more = a.room(mib.size())) {
        REQUIRE(a.keep(std::string_view(more.data(), more.size())));
    }
    CHECK(a.bytes().size() == hold.per_response);
    CHECK(a.holding());
    // ...and at the total over every response.
    held_response b(&hold, 2 * mib.size());
    CHECK(b.room(10 * mib.size()).size() == hold.total - hold.per_response);
    CHECK(hold.held == hold.total);
    CHECK(b.room(0).empty());  // a new room gives the last one back
    CHECK(hold.held == hold.per_response);
    a.release();
    b.release();
    CHECK(hold.held == 0);
    CHECK(b.room(1).empty());  // released: holds nothing more
}
