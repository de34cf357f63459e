#include "model/text.hpp"

#include <catch2/catch.hpp>

using namespace std::string_literals;
using comeback::cut_at_char_boundary;
using comeback::is_valid_utf8;
using comeback::quoted;
using comeback::to_storable_text;

TEST_CASE("well-formed UTF-8 is recognised, malformed is not", "[text]") {
    CHECK(is_valid_utf8(""));
    CHECK(is_valid_utf8("plain ascii that is longer than eight bytes"));
    CHECK(is_valid_utf8("Mäklarbyrån Syd"));
    CHECK(is_valid_utf8("\xF0\x9F\x8F\xA0 house"));
    CHECK(is_valid_utf8("\xEF\xBF\xBD"));
    CHECK_FALSE(is_valid_utf8("Caf\xE9"));                 // Latin-1
    CHECK_FALSE(is_valid_utf8("\xC0\xAF"));                // overlong '/'
    CHECK_FALSE(is_valid_utf8("\xE0\x80\xAF"));            // overlong
    CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));            // a surrogate
    CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));        // above U+10FFFF
    CHECK_FALSE(is_valid_utf8("abcdefgh\xC3"));            // cut after the fast path
    CHECK_FALSE(is_valid_utf8("\x80"));
}

TEST_CASE("storable text replaces malformed bytes and NUL with U+FFFD", "[text]") {
    CHECK(to_storable_text("Caf\xE9!") == "Caf\xEF\xBF\xBD!");
    CHECK(to_storable_text("a\0b"s) == "a\xEF\xBF\xBD" "b");
    CHECK(to_storable_text("Mäklare") == "Mäklare");
}

TEST_CASE("cutting never splits a character", "[text]") {
    CHECK(cut_at_char_boundary("abc", 10) == "abc");
    CHECK(cut_at_char_boundary("abä", 3) == "ab");   // ä is two bytes
    CHECK(cut_at_char_boundary("abä", 4) == "abä");
    CHECK(cut_at_char_boundary("\xF0\x9F\x8F\xA0", 3) == "");
}

TEST_CASE("quoted values escape what a log line cannot hold", "[text]") {
    CHECK(quoted("yes") == "\"yes\"");
    CHECK(quoted("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(quoted("\x01\xFFä") == "\"\\x01\\xFFä\"");
    CHECK(quoted("abcdef", 3) == "\"abc\"...");
}

TEST_CASE("JSON and log-line quoting escape the same characters, control bytes each its own way",
          "[text]") {
    const std::string value = "say \"hi\"\\ one\ntwo\x01\x7f åäö";
    std::string json;
    comeback::append_json_string(json, value);
    CHECK(json == R"("say \"hi\"\\ one\ntwo\u0001\u007f åäö")");
    std::string logfmt;
    comeback::append_logfmt_string(logfmt, value);
    CHECK(logfmt == R"("say \"hi\"\\ one\ntwo\x01\x7f åäö")");
}
