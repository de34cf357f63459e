#include "load/content_digest.hpp"

#include <catch2/catch.hpp>

#include <string>

using comeback::content_digest;

TEST_CASE("the content digest is SHA-256 of everything added, however it was cut") {
    content_digest whole;
    whole.add("abc");
    CHECK(whole.finish() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    content_digest pieces;
    pieces.add("a");
    pieces.add("");
    pieces.add("bc");
    CHECK(pieces.finish() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    content_digest empty;
    CHECK(empty.finish() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("a content digest is finished once") {
    content_digest digest;
    digest.add("x");
    digest.finish();
    CHECK_THROWS_AS(digest.add("y"), std::logic_error);
    CHECK_THROWS_AS(digest.finish(), std::logic_error);
}
