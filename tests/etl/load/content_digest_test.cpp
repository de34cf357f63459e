#include "load/content_digest.hpp"

#include <catch2/catch.hpp>

#include <string>

using comeback::content_digest;

// The expected values are what `xxhsum -H2` (Debian package xxhash) prints for
// the same bytes, e.g. `printf abc | xxhsum -H2`.
TEST_CASE("the content digest is XXH3-128 of everything added, however it was cut") {
    content_digest whole;
    whole.add("abc");
    CHECK(whole.finish() == "06b05ab6733a618578af5f94892f3950");

    content_digest pieces;
    pieces.add("a");
    pieces.add("");
    pieces.add("bc");
    CHECK(pieces.finish() == "06b05ab6733a618578af5f94892f3950");

    content_digest empty;
    CHECK(empty.finish() == "99aa06d3014798d86001c324468d497f");

    // Past the hash's internal block and stripe sizes, cut at sizes that do
    // not divide them: `head -c 100000 /dev/zero | tr '\0' a | xxhsum -H2`.
    const std::string long_input(100000, 'a');
    content_digest at_once;
    at_once.add(long_input);
    CHECK(at_once.finish() == "819d5302938c790308f809ef04c54838");
    content_digest cut;
    for (std::size_t at = 0; at < long_input.size(); at += 777) {
        cut.add(std::string_view(long_input).substr(at, 777));
    }
    CHECK(cut.finish() == "819d5302938c790308f809ef04c54838");
}

TEST_CASE("a content digest is finished once") {
    content_digest digest;
    digest.add("x");
    digest.finish();
    CHECK_THROWS_AS(digest.add("y"), std::logic_error);
    CHECK_THROWS_AS(digest.finish(), std::logic_error);
}
