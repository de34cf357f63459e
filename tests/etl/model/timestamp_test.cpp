#include "model/timestamp.hpp"

#include <catch2/catch.hpp>
#include <date/tz.h>

#include <string>

using comeback::find_zone;
using comeback::format_utc;
using comeback::parse_timestamp;

namespace {

const date::time_zone& stockholm() { return find_zone("Europe/Stockholm"); }

std::string read_utc(std::string_view text) {
    const auto read = parse_timestamp(text, stockholm(), "occursAt");
    INFO("input " << text << " error " << read.error);
    REQUIRE(read);
    CHECK(read.error.empty());
    return format_utc(*read.value);
}

std::string error_for(std::string_view text) {
    const auto read = parse_timestamp(text, stockholm(), "bookedDate");
    INFO("input " << text);
    REQUIRE_FALSE(read);
    return read.error;
}

}  // namespace

TEST_CASE("every spelling Vitec writes is read to the same UTC microsecond", "[timestamp]") {
    CHECK(read_utc("2024-04-28T22:58:37.5691339+02:00") == "2024-04-28T20:58:37.569133Z");
    CHECK(read_utc("2024-04-28T20:58:37.5691339Z") == "2024-04-28T20:58:37.569133Z");
    CHECK(read_utc("2024-04-28T20:58:37Z") == "2024-04-28T20:58:37.000000Z");
    CHECK(read_utc("2024-04-28T20:58:37.1Z") == "2024-04-28T20:58:37.100000Z");
    CHECK(read_utc("2024-04-28T20:58:37.123Z") == "2024-04-28T20:58:37.123000Z");
    CHECK(read_utc("2024-04-28T20:58:37.123456Z") == "2024-04-28T20:58:37.123456Z");
    CHECK(read_utc("2024-01-15T07:00:00-05:00") == "2024-01-15T12:00:00.000000Z");
    CHECK(read_utc("2024-01-15T07:00:00+00:00") == "2024-01-15T07:00:00.000000Z");
    CHECK(read_utc("2024-01-15T07:00") == "2024-01-15T06:00:00.000000Z");
    CHECK(read_utc("2024-01-15T07:00Z") == "2024-01-15T07:00:00.000000Z");
}

TEST_CASE("digits past the sixth are truncated, never rounded", "[timestamp]") {
    CHECK(read_utc("2026-01-10T08:00:00.9999999") == "2026-01-10T07:00:00.999999Z");
    CHECK(read_utc("2026-12-31T23:59:59.99999999999+01:00") == "2026-12-31T22:59:59.999999Z");
    CHECK(read_utc("2026-01-10T08:00:00.0000009Z") == "2026-01-10T08:00:00.000000Z");
}

TEST_CASE("a time without offset is wall-clock time in the API zone", "[timestamp]") {
    CHECK(read_utc("2026-09-10T08:00:00.123") == "2026-09-10T06:00:00.123000Z");  // summer, +02
    CHECK(read_utc("2026-01-10T08:00:00") == "2026-01-10T07:00:00.000000Z");      // winter, +01
    // Past the last transition a 32-bit zone file lists: the rules still apply.
    CHECK(read_utc("2040-07-01T12:00:00") == "2040-07-01T10:00:00.000000Z");
    CHECK(read_utc("2040-12-01T12:00:00") == "2040-12-01T11:00:00.000000Z");
    const auto& new_york = find_zone("America/New_York");
    const auto read = parse_timestamp("2026-07-04T12:00:00", new_york, "occursAt");
    REQUIRE(read);
    CHECK(format_utc(*read.value) == "2026-07-04T16:00:00.000000Z");
}

TEST_CASE("a local time in the spring-forward gap moves later by the gap", "[timestamp][dst]") {
    // Europe/Stockholm, 29 March 2026: 02:00 CET jumps to 03:00 CEST.
    CHECK(read_utc("2026-03-29T01:59:59") == "2026-03-29T00:59:59.000000Z");
    CHECK(read_utc("2026-03-29T02:00:00") == "2026-03-29T01:00:00.000000Z");
    CHECK(read_utc("2026-03-29T02:30:00") == "2026-03-29T01:30:00.000000Z");  // read as 03:30 CEST
    CHECK(read_utc("2026-03-29T02:59:59.999999") == "2026-03-29T01:59:59.999999Z");
    CHECK(read_utc("2026-03-29T03:00:00") == "2026-03-29T01:00:00.000000Z");
}

TEST_CASE("a local time in the repeated autumn hour is its first occurrence", "[timestamp][dst]") {
    // Europe/Stockholm, 25 October 2026: 03:00 CEST falls back to 02:00 CET.
    CHECK(read_utc("2026-10-25T01:59:59") == "2026-10-24T23:59:59.000000Z");
    CHECK(read_utc("2026-10-25T02:00:00") == "2026-10-25T00:00:00.000000Z");
    CHECK(read_utc("2026-10-25T02:30:00") == "2026-10-25T00:30:00.000000Z");
    CHECK(read_utc("2026-10-25T02:59:59") == "2026-10-25T00:59:59.000000Z");
    CHECK(read_utc("2026-10-25T03:00:00") == "2026-10-25T02:00:00.000000Z");
    // An explicit offset picks either occurrence.
    CHECK(read_utc("2026-10-25T02:30:00+02:00") == "2026-10-25T00:30:00.000000Z");
    CHECK(read_utc("2026-10-25T02:30:00+01:00") == "2026-10-25T01:30:00.000000Z");
}

TEST_CASE("garbage is an error naming the field and the value", "[timestamp]") {
    const char* garbage[] = {
        "",
        "yesterday",
        "2024-13-01T00:00:00",
        "2024-02-30T00:00:00",
        "2023-02-29T00:00:00",
        "2024-01-01T24:00:00",
        "2024-01-01T23:60:00",
        "2024-01-01T23:59:60",
        "2024-01-01",
        "2024-01-01 12:00:00",
        "2024-01-01T12:00:00.",
        "2024-01-01T12:00:00Zjunk",
        "2024-01-01T12:00:00+0200",
        "2024-01-01T12:00:00+02",
        "2024-01-01T12:00:00+24:00",
        "2024-01-01T12:00:00+02:00 ",
        " 2024-01-01T12:00:00",
        "2024-1-01T12:00:00",
        "2024-01-01T12:00:00.123abc",
    };
    for (const char* text : garbage) {
        const std::string error = error_for(text);
        INFO("input \"" << text << "\" error " << error);
        CHECK(error.rfind("bookedDate: ", 0) == 0);
        CHECK(error.find("\"" + std::string(text) + "\"") != std::string::npos);
    }
    CHECK(error_for("2024-13-01T00:00:00").find("month 13") != std::string::npos);
    CHECK(error_for("2024-02-30T00:00:00").find("day 30") != std::string::npos);
    CHECK(error_for("").find("empty") != std::string::npos);
}

TEST_CASE("an error shows a hostile value safely", "[timestamp]") {
    const std::string error = error_for(std::string_view("\xff\x00\"x", 4));
    CHECK(error.find("\\xFF\\x00\\\"x") != std::string::npos);
    const std::string long_value(500, '9');
    CHECK(error_for(long_value).size() < 250);
}

TEST_CASE("format_utc writes microseconds and Z", "[timestamp]") {
    using namespace std::chrono;
    const date::sys_days day{date::year{2026} / 3 / 29};
    const comeback::instant value{day.time_since_epoch() + hours{1} + microseconds{7}};
    CHECK(format_utc(value) == "2026-03-29T01:00:00.000007Z");
}

TEST_CASE("an unknown zone name is an error naming it", "[timestamp]") {
    CHECK_THROWS_WITH(find_zone("Europe/Atlantis"), Catch::Contains("\"Europe/Atlantis\""));
    CHECK(find_zone("UTC").name() == "UTC");
}

TEST_CASE("every local half hour of 2026 reads as date/tz's own answer, in sequence", "[timestamp][dst]") {
    using namespace std::chrono;
    const auto& zone = stockholm();
    const date::local_seconds start{date::local_days{date::year{2026} / 1 / 1}};
    const date::local_seconds stop{date::local_days{date::year{2027} / 1 / 1}};
    std::size_t checked = 0;
    for (date::local_seconds t = start; t < stop; t += minutes{30}) {
        const date::local_info info = zone.get_info(t);
        const auto expected = date::sys_seconds{t.time_since_epoch() - info.first.offset};
        const std::string text = date::format("%FT%T", t);
        const auto read = parse_timestamp(text, zone, "occursAt");
        REQUIRE(read);
        if (*read.value != comeback::instant{expected}) FAIL("wrong instant for " << text);
        ++checked;
    }
    CHECK(checked == 365 * 48);
}
