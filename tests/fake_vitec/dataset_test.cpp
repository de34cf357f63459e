#include "dataset.hpp"

#include <catch2/catch.hpp>
#include <date/tz.h>

#include <regex>
#include <set>
#include <sstream>

using namespace comeback::fake;
using namespace std::chrono;

namespace {

std::vector<std::string> all_json(const dataset& data) {
    std::vector<std::string> out;
    for (std::size_t c = 0; c < data.options().customers.size(); ++c)
        for (std::size_t slot = 0; slot < data.slot_count(c); ++slot) {
            std::string text;
            if (auto row = data.row(c, slot)) data.append_json(*row, text);
            out.push_back(text);  // empty for a deleted slot
        }
    return out;
}

// Reads a timestamp the way the API documentation describes them, independently
// of the project's own parser: up to 7 fraction digits (the 7th dropped), then
// an offset, Z, or nothing (Stockholm wall clock).
micro_time read_back(const std::string& text, const date::time_zone& zone) {
    static const std::regex shape(R"((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,7}))?(Z|[+-]\d\d:\d\d)?)");
    std::smatch m;
    REQUIRE(std::regex_match(text, m, shape));
    std::string fraction = m[2].str().substr(0, 6);
    fraction.resize(6, '0');
    std::istringstream in(m[1].str());
    date::local_seconds local;
    in >> date::parse("%FT%T", local);
    REQUIRE_FALSE(in.fail());
    auto value = date::local_time<microseconds>(local) + microseconds(std::stoi(fraction));
    if (!m[3].matched) return zone.to_sys(value, date::choose::earliest);
    micro_time utc(value.time_since_epoch());
    if (m[3] == "Z") return utc;
    auto offset = hours(std::stoi(m[3].str().substr(1, 2))) + minutes(std::stoi(m[3].str().substr(4, 2)));
    return m[3].str()[0] == '+' ? utc - offset : utc + offset;
}

}  // namespace

TEST_CASE("the same options give the same rows, another seed other rows") {
    dataset_options options;
    options.customers = {"M1", "M2"};
    options.rows_per_customer = 300;
    auto first = all_json(dataset(options));
    CHECK(first == all_json(dataset(options)));
    options.seed = 2;
    CHECK(first != all_json(dataset(options)));
}

TEST_CASE("a later generation deletes, changes and adds rows but keeps most") {
    dataset_options options;
    options.rows_per_customer = 1000;
    dataset before(options);
    options.generation = 1;
    dataset after(options);
    REQUIRE(after.slot_count(0) > before.slot_count(0));
    std::size_t deleted = 0, changed = 0, same = 0, added = 0;
    for (std::size_t slot = 0; slot < after.slot_count(0); ++slot) {
        auto old_row = slot < before.slot_count(0) ? before.row(0, slot) : std::nullopt;
        auto new_row = after.row(0, slot);
        std::string a, b;
        if (old_row) before.append_json(*old_row, a);
        if (new_row) after.append_json(*new_row, b);
        if (old_row && !new_row) ++deleted;
        else if (!old_row && new_row) ++added;
        else if (a == b) ++same;
        else ++changed;
    }
    CHECK(deleted > 10);
    CHECK(changed > 100);
    CHECK(added == 50);
    CHECK(same > 300);  // renamed users and contacts touch many rows
}

TEST_CASE("nasty data has hostile names, nulls at every level and single-participant rows") {
    dataset_options options;
    options.rows_per_customer = 3000;
    options.nasty = true;
    dataset data(options);
    std::string all;
    for (auto& text : all_json(data)) all += text + "\n";
    CHECK(all.find("\"contact\":null") != std::string::npos);
    CHECK(all.find("\"bookedBy\":null") != std::string::npos);
    CHECK(all.find("\"assignedTo\":null") != std::string::npos);
    CHECK(all.find("\"assignedTo\":{\"user\":null,\"userGroup\":null,\"office\":null}") != std::string::npos);
    CHECK(all.find("\"name\":null") != std::string::npos);
    CHECK(all.find("\"state\":null") != std::string::npos);
    CHECK(all.find("\"origin\":null") != std::string::npos);
    CHECK(all.find("😀") != std::string::npos);
    CHECK(all.find("back\\\\slash") != std::string::npos);
    CHECK(all.find("\\\"Bobby\\\"") != std::string::npos);
    CHECK(all.find("Line\\nbreak") != std::string::npos);
    CHECK(std::regex_search(all, std::regex("\"user\":null,\"userGroup\":\\{[^}]*\\},\"office\":null")));
    CHECK(std::regex_search(all, std::regex("\"user\":null,\"userGroup\":null,\"office\":\\{")));
}

TEST_CASE("every date style is used and reads back to the instant the dump reports") {
    dataset_options options;
    options.rows_per_customer = 2000;
    options.from = date::local_days{date::year{2024} / 10 / 20};  // spans the autumn DST change
    options.to = date::local_days{date::year{2024} / 11 / 3};
    dataset data(options);
    static const std::regex occurs("\"occursAt\":\"([^\"]+)\",\"bookedDate\":\"([^\"]+)\"");
    std::set<std::string> shapes;
    for (std::size_t slot = 0; slot < data.slot_count(0); ++slot) {
        auto row = data.row(0, slot);
        REQUIRE(row);
        std::string text;
        data.append_json(*row, text);
        std::smatch m;
        REQUIRE(std::regex_search(text, m, occurs));
        CHECK(read_back(m[1], data.zone()) == row->occurs_at);
        CHECK(read_back(m[2], data.zone()) == row->booked_at);
        auto s = m[1].str();
        shapes.insert(s.ends_with("Z") ? "Z" : s.size() > 27 ? "offset" : s.size() == 19 ? "seconds" : "millis");
        CHECK(data.zone().to_local(row->occurs_at) >= date::local_time<microseconds>(options.from));
        CHECK(data.zone().to_local(row->occurs_at) < date::local_time<microseconds>(options.to + date::days{1}));
    }
    CHECK(shapes == std::set<std::string>{"Z", "offset", "seconds", "millis"});
}

TEST_CASE("from and to select inclusively on local wall-clock time") {
    dataset_options options;
    dataset data(options);
    auto row = *data.row(0, 0);
    auto local = floor<microseconds>(data.zone().to_local(row.occurs_at));
    CHECK(data.matches(row, date_criterion::occurrence, local, local));
    CHECK_FALSE(data.matches(row, date_criterion::occurrence, local + microseconds(1), local + hours(1)));
    CHECK_FALSE(data.matches(row, date_criterion::occurrence, local - hours(1), local - microseconds(1)));
    auto booked = floor<microseconds>(data.zone().to_local(row.booked_at));
    CHECK(data.matches(row, date_criterion::booked, booked, booked));
    CHECK(parse_date_criterion("occurrence") == date_criterion::occurrence);
    CHECK(parse_date_criterion("BookedDate") == date_criterion::booked);
    CHECK_FALSE(parse_date_criterion("Tomorrow"));
}

TEST_CASE("the date index finds exactly the rows a full scan selects, in slot order") {
    dataset_options options;
    options.customers = {"M1", "M2"};
    options.rows_per_customer = 3000;
    options.nasty = true;
    options.generation = 2;  // deleted slots and rescheduled rows too
    dataset data(options);
    using local_us = date::local_time<microseconds>;
    auto scan = [&](std::size_t customer, date_criterion criterion, local_us from, local_us to) {
        std::vector<std::uint32_t> out;
        for (std::size_t slot = 0; slot < data.slot_count(customer); ++slot) {
            auto row = data.row(customer, slot);
            if (row && data.matches(*row, criterion, from, to)) out.push_back(static_cast<std::uint32_t>(slot));
        }
        return out;
    };
    auto day = [](date::year_month_day d) { return local_us(date::local_days(d)); };
    using namespace date::literals;
    // Whole months, the days the clocks change (the repeated autumn hour), a
    // window nothing lies in, and one whose bounds are a row's exact instant.
    std::vector<std::pair<local_us, local_us>> windows{
        {day(2024_y / 1 / 1), day(2024_y / 1 / 31) + hours(24) - microseconds(1)},
        {day(2024_y / 3 / 31), day(2024_y / 4 / 1) - microseconds(1)},
        {day(2024_y / 10 / 27), day(2024_y / 10 / 28) - microseconds(1)},
        {day(2024_y / 1 / 1), day(2024_y / 12 / 31) + hours(24)},
        {day(2030_y / 1 / 1), day(2030_y / 2 / 1)},
    };
    auto row = *data.row(1, 7);
    auto exact = floor<microseconds>(data.zone().to_local(row.occurs_at));
    windows.emplace_back(exact, exact);
    for (std::size_t customer = 0; customer < 2; ++customer) {
        for (auto criterion : {date_criterion::occurrence, date_criterion::booked}) {
            date_index index(data, customer, criterion);
            for (const auto& [from, to] : windows) {
                INFO("customer " << customer << " window " << date::format("%F %T", from) << " .. "
                                 << date::format("%F %T", to));
                CHECK(index.slots(from, to) == scan(customer, criterion, from, to));
            }
        }
    }
    CHECK(date_index(data, 1, date_criterion::occurrence).slots(exact, exact) ==
          std::vector<std::uint32_t>{7});
    CHECK_THROWS_AS(date_index(data, 2, date_criterion::occurrence), std::out_of_range);
}

TEST_CASE("the dump writes NULL unquoted, text quoted and timestamps in UTC") {
    dataset_options options;
    options.rows_per_customer = 500;
    options.nasty = true;
    dataset data(options);
    std::string csv;
    for (std::size_t slot = 0; slot < data.slot_count(0); ++slot)
        if (auto row = data.row(0, slot)) data.append_csv(*row, csv);
    CHECK(dataset::csv_header().starts_with("customer_id,comeback_id,contact_id,contact_name,"));
    CHECK(csv.find("\"M1\",\"M1-100000\",") == 0);
    CHECK(csv.find("\"O'Brien \"\"Bobby\"\" Tables\"") != std::string::npos);
    CHECK(std::regex_search(csv, std::regex(",,")));  // some NULL
    CHECK(std::regex_search(csv, std::regex(R"(,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\n)")));
}
