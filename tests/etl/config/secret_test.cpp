// A secret's memory holds the text only while the secret does: wiped when it
// is destroyed, replaced or moved from, and wipe() clears a whole buffer.

#include "config/secret.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using comeback::secret;
using comeback::wipe;

namespace {

// True when the first `size` bytes at `at` are all zero. The buffer read is
// still owned by the string it came from.
bool zeroed(const char* at, std::size_t size) {
    return std::all_of(at, at + size, [](char c) { return c == '\0'; });
}

}  // namespace

TEST_CASE("wipe() zeroes the whole buffer, past the current size too, and keeps it") {
    std::string text(100, 's');
    text.resize(10);  // the 90 bytes after still hold 's'
    const char* buffer = text.data();
    const std::size_t capacity = text.capacity();
    wipe(text);
    CHECK(text.empty());
    CHECK(text.data() == buffer);  // nothing freed unwiped
    CHECK(zeroed(buffer, capacity));
}

TEST_CASE("a secret leaves nothing behind when moved from, replaced or built from a string") {
    SECTION("moved from, short text in the string's own buffer") {
        secret from("short-pw");
        const char* buffer = from.reveal().data();
        secret to(std::move(from));
        CHECK(to.reveal() == "short-pw");
        CHECK(from.empty());
        CHECK(zeroed(buffer, 8));
    }
    SECTION("replaced by a shorter one, whose text lands in the same buffer") {
        secret kept(std::string(64, 'k'));
        const char* buffer = kept.reveal().data();
        const secret shorter("x");
        kept = shorter;
        REQUIRE(kept.reveal().data() == buffer);  // the buffer was kept, so it can be checked
        CHECK(kept.reveal() == "x");
        CHECK(zeroed(buffer + 1, 63));  // no 'k' left after the new text
    }
    SECTION("move-assigned from, short text") {
        secret from("short-pw");
        const char* buffer = from.reveal().data();
        secret to("other");
        to = std::move(from);
        CHECK(to.reveal() == "short-pw");
        CHECK(zeroed(buffer, 8));
    }
    SECTION("built from a short string, whose own buffer is wiped") {
        std::string source = "short-pw";
        const char* buffer = source.data();
        secret made(std::move(source));
        CHECK(made.reveal() == "short-pw");
        CHECK(zeroed(buffer, 8));
    }
}
