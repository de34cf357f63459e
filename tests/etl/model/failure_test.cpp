// The one list of failure kinds: its rules, its labels (a metric contract),
// and the troubleshooting table in docs/operations.md, which must say exactly
// what the list says.

#include "model/failure.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

using namespace comeback;

TEST_CASE("the labels of the kinds metrics already report never change, and every label is unique") {
    // requests_total{outcome} carried these before the list grew; dashboards rely on them.
    CHECK(committed_label == "rows");
    CHECK(to_string(failure_kind::broken_response) == "broken_response");
    CHECK(to_string(failure_kind::request_rejected) == "request_rejected");
    CHECK(to_string(failure_kind::credentials_rejected) == "credentials_rejected");
    CHECK(to_string(failure_kind::access_denied) == "access_denied");
    CHECK(to_string(failure_kind::endpoint_missing) == "endpoint_missing");
    CHECK(to_string(failure_kind::throttled) == "throttled");
    CHECK(to_string(failure_kind::transient) == "transient");
    CHECK(to_string(failure_kind::tls_rejected) == "tls_rejected");

    std::set<std::string_view> labels{committed_label};
    for (const auto& info : failure_kinds) {
        INFO(info.label);
        CHECK(labels.insert(info.label).second);
        CHECK(describe(info.kind).label == info.label);
        CHECK_FALSE(info.cause.empty());
        CHECK_FALSE(info.action.empty());
        // A label is a Prometheus label value and a log field: plain snake_case.
        CHECK(info.label.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string_view::npos);
    }
}

TEST_CASE("each kind carries its retry rule: passing trouble is retried, what needs a person is not") {
    for (auto kind : {failure_kind::broken_response, failure_kind::throttled, failure_kind::transient,
                      failure_kind::database_lost, failure_kind::database_conflict}) {
        INFO(to_string(kind));
        CHECK(is_retryable(kind));
        CHECK_FALSE(parks_customer(kind));
    }
    for (auto kind : {failure_kind::request_rejected, failure_kind::endpoint_missing,
                      failure_kind::tls_rejected, failure_kind::database_refused,
                      failure_kind::response_too_large, failure_kind::field_too_large,
                      failure_kind::protocol_violation, failure_kind::all_rejected}) {
        INFO(to_string(kind));
        CHECK(rule_of(kind) == retry_rule::next_cycle);
    }
    CHECK(parks_customer(failure_kind::credentials_rejected));
    CHECK(parks_customer(failure_kind::access_denied));
    CHECK(is_retryable(failure_kind::database_timeout));
    // A dropped response is not a failure: nothing to retry, nothing to count.
    for (auto kind : {failure_kind::stale_fetch, failure_kind::lease_lost}) {
        INFO(to_string(kind));
        CHECK(is_dropped(kind));
        CHECK_FALSE(is_retryable(kind));
    }
    // Only a database that cannot be reached makes work wait for it.
    CHECK(is_database_outage(failure_kind::database_lost));
    CHECK_FALSE(is_database_outage(failure_kind::database_refused));
    // A programming error is never a retryable transient.
    CHECK(rule_of(failure_kind::internal_error) == retry_rule::end_cycle);
    CHECK_FALSE(is_retryable(failure_kind::internal_error));
}

TEST_CASE("the outcome label of an attempt is rows when it committed, else its kind's label") {
    CHECK(outcome_label(std::nullopt) == "rows");
    CHECK(outcome_label(failure_kind::database_lost) == "database_lost");
}

namespace {

// The table docs/operations.md must hold, rendered from the list.
std::string troubleshooting_table() {
    std::ostringstream out;
    out << "| kind | what happened | retried | what to do |\n";
    out << "| --- | --- | --- | --- |\n";
    for (const auto& info : failure_kinds) {
        out << "| `" << info.label << "` | " << info.cause << " | " << to_string(info.rule) << " | "
            << info.action << " |\n";
    }
    return out.str();
}

// The table lines under the heading that ends in `title`, up to the next heading.
std::string table_under(const std::filesystem::path& file, std::string_view title) {
    std::ifstream in(file);  // a missing page holds no table
    std::string line, table;
    bool inside = false;
    while (std::getline(in, line)) {
        if (line.starts_with("#")) {
            if (inside) break;
            inside = line.ends_with(title);
            continue;
        }
        if (inside && line.starts_with("|")) table += line + "\n";
    }
    return table;
}

}  // namespace

TEST_CASE("the troubleshooting table in docs/operations.md is the list, row for row") {
    const auto page = std::filesystem::path(COMEBACK_SOURCE_DIR) / "docs/operations.md";
    const std::string expected = troubleshooting_table();
    const std::string found = table_under(page, "Troubleshooting by failure kind");
    if (found != expected) {
        // What the page should say, to paste into it.
        const auto wanted = std::filesystem::absolute("troubleshooting_table.md");
        std::ofstream(wanted) << expected;
        INFO("the table in docs/operations.md, \"Troubleshooting by failure kind\", is not the list; "
             "the table it should hold is in " << wanted.string());
        CHECK(found == expected);
    }
}
