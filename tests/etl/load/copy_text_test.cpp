#include "load/copy_text.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using comeback::copy_text;
using comeback::instant;

namespace {

std::string escaped(std::string_view value) {
    std::string out;
    copy_text::append_escaped(out, value);
    return out;
}

}  // namespace

TEST_CASE("COPY text escapes backslash and the control characters COPY reads as escapes") {
    CHECK(escaped("back\\slash") == "back\\\\slash");
    CHECK(escaped("new\nline") == "new\\nline");
    CHECK(escaped("carriage\rreturn") == "carriage\\rreturn");
    CHECK(escaped("tab\there") == "tab\\there");
    CHECK(escaped("back\bspace") == "back\\bspace");
    CHECK(escaped("form\ffeed") == "form\\ffeed");
    CHECK(escaped("vertical\vtab") == "vertical\\vtab");
    // Text that merely looks like an escape or a NULL stays text.
    CHECK(escaped("\\N") == "\\\\N");
    CHECK(escaped("") == "");
    // Escapes at either end and side by side, and text between them.
    CHECK(escaped("\tab\n") == "\\tab\\n");
    CHECK(escaped("\n\r\\") == "\\n\\r\\\\");
    CHECK(escaped("a\tb\tc") == "a\\tb\\tc");
}

TEST_CASE("COPY text leaves other bytes as they are, UTF-8 included") {
    const std::string text = "Åsa Öberg-Ärlig ☃ 🏠 \"quoted\" 'single' \x01\x1f";
    CHECK(escaped(text) == text);
}

TEST_CASE("a NUL character, which PostgreSQL text cannot hold, becomes U+FFFD") {
    CHECK(escaped(std::string("before\0after", 12)) == "before\xEF\xBF\xBD" "after");
    CHECK(escaped(std::string("\0\0", 2)) == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("COPY text rows separate fields by tabs, end with a newline, and write NULL as \\N") {
    copy_text rows;
    CHECK(rows.empty());
    rows.number(7);
    rows.text(std::string("K\t1"));
    rows.text(std::optional<std::string>{});
    rows.text(std::optional<std::string>{"Anna"});
    rows.null();
    rows.plain("user");
    rows.end_row();
    rows.text(std::string_view{"second"});
    rows.end_row();

    CHECK(rows.view() == "7\tK\\t1\t\\N\tAnna\t\\N\tuser\nsecond\n");
    CHECK(rows.size() == rows.view().size());

    rows.clear();
    CHECK(rows.empty());
    rows.text(std::string("after clear"));
    rows.end_row();
    CHECK(rows.view() == "after clear\n");
}

TEST_CASE("COPY text numbers are plain decimal digits, negative and extreme ones too") {
    copy_text rows;
    rows.number(0);
    rows.number(-42);
    rows.number(std::numeric_limits<long long>::max());
    rows.number(std::numeric_limits<long long>::min());
    rows.end_row();
    CHECK(rows.view() == "0\t-42\t9223372036854775807\t-9223372036854775808\n");
}

TEST_CASE("COPY text instants are microseconds since the Unix epoch, or NULL") {
    copy_text rows;
    rows.micros(instant{std::chrono::microseconds{1714989600123456}});
    rows.micros(instant{std::chrono::microseconds{-1}});
    rows.micros(std::nullopt);
    rows.end_row();
    CHECK(rows.view() == "1714989600123456\t-1\t\\N\n");
}

TEST_CASE("COPY text rows become one array literal per column, escapes read and every element quoted") {
    copy_text rows;
    rows.number(1);
    rows.text(std::string("tab\there \"quoted\" back\\slash {a,b} NULL"));
    rows.null();
    rows.end_row();
    rows.number(2);
    rows.text(std::string("new\nline\rcr\bbs\fff\vvt"));
    rows.text(std::string(""));
    rows.end_row();
    const auto arrays = copy_text::array_literals(rows.view(), 3);
    REQUIRE(arrays.size() == 3);
    CHECK(arrays[0] == "{\"1\",\"2\"}");
    CHECK(arrays[1] == "{\"tab\there \\\"quoted\\\" back\\\\slash {a,b} NULL\",\"new\nline\rcr\bbs\fff\vvt\"}");
    CHECK(arrays[2] == "{NULL,\"\"}");
    // Text that reads as \N is text, not NULL.
    copy_text looks_null;
    looks_null.text(std::string("\\N"));
    looks_null.end_row();
    CHECK(copy_text::array_literals(looks_null.view(), 1) == std::vector<std::string>{"{\"\\\\N\"}"});
}

TEST_CASE("no rows are empty arrays, and a row with another number of fields is refused") {
    CHECK(copy_text::array_literals("", 2) == std::vector<std::string>{"{}", "{}"});
    CHECK_THROWS_AS(copy_text::array_literals("1\t2\n", 3), std::logic_error);
    CHECK_THROWS_AS(copy_text::array_literals("1\t2\t3\n", 2), std::logic_error);
    CHECK_THROWS_AS(copy_text::array_literals("1\t2", 2), std::logic_error);
}

TEST_CASE("a list becomes one array literal, each value one element") {
    const std::vector<std::string> names{"a\"b", "c\\d", "e,{f}", ""};
    CHECK(copy_text::array_of(names.size(), [&](copy_text& rows, std::size_t i) { rows.text(names[i]); }) ==
          "{\"a\\\"b\",\"c\\\\d\",\"e,{f}\",\"\"}");
    const std::vector<long long> numbers{-1, 0, 42};
    CHECK(copy_text::array_of(numbers.size(), [&](copy_text& rows, std::size_t i) { rows.number(numbers[i]); }) ==
          "{\"-1\",\"0\",\"42\"}");
    CHECK(copy_text::array_of(0, [](copy_text&, std::size_t) {}) == "{}");
}
