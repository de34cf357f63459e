#include "cli.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace comeback;

namespace {

const std::string existing_file = std::string(COMEBACK_SOURCE_DIR) + "/config/comeback-sync.example.yaml";

parse_outcome parse(std::vector<std::string> args) {
    args.insert(args.begin(), "comeback-sync");
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("every subcommand takes its configuration file with -c") {
    for (auto [name, what] : {std::pair{"migrate", command::migrate}, std::pair{"run", command::run},
                              std::pair{"status", command::status},
                              std::pair{"check-config", command::check_config},
                              std::pair{"apply-privacy", command::apply_privacy}}) {
        const auto outcome = parse({name, "-c", existing_file});
        REQUIRE(outcome.line);
        CHECK(outcome.line->what == what);
        CHECK(outcome.line->config_file == existing_file);
    }
}

TEST_CASE("run --once, status --json and backfill options are read") {
    CHECK(parse({"run", "-c", existing_file, "--once"}).line->once);
    CHECK(parse({"status", "-c", existing_file, "--json"}).line->json);
    const auto backfill = parse({"backfill", "-c", existing_file, "--from", "2024-01-01", "--to",
                                 "2024-03-31", "--customer", "M1", "--customer", "M2", "--force"});
    REQUIRE(backfill.line);
    CHECK(backfill.line->what == command::backfill);
    CHECK(backfill.line->from == date::local_days{date::year{2024} / 1 / 1});
    CHECK(backfill.line->to == date::local_days{date::year{2024} / 3 / 31});
    CHECK(backfill.line->customers == std::vector<std::string>{"M1", "M2"});
    CHECK(backfill.line->force);
    CHECK_FALSE(backfill.line->recheck);
    CHECK(parse({"backfill", "-c", existing_file, "--from", "2024-01-01", "--to", "2024-03-31",
                 "--recheck"})
              .line->recheck);
}

TEST_CASE("backfill --accept-deletes and forget-contact's customer and contact are read") {
    const auto accept = parse({"backfill", "-c", existing_file, "--from", "2024-05-06", "--to", "2024-05-12",
                               "--customer", "M1", "--accept-deletes"});
    REQUIRE(accept.line);
    CHECK(accept.line->accept_deletes);
    CHECK_FALSE(parse({"backfill", "-c", existing_file, "--from", "2024-05-06", "--to", "2024-05-12"})
                    .line->accept_deletes);
    const auto forget = parse({"forget-contact", "-c", existing_file, "--customer", "M1", "--contact", "C-4711"});
    REQUIRE(forget.line);
    CHECK(forget.line->what == command::forget_contact);
    CHECK(forget.line->customer == "M1");
    CHECK(forget.line->contact == "C-4711");
}

TEST_CASE("help and version exit 0 without a command") {
    for (const char* flag : {"--help", "--version"}) {
        const auto outcome = parse({flag});
        CHECK_FALSE(outcome.line);
        CHECK(outcome.exit_code == 0);
    }
}

TEST_CASE("usage errors exit 2") {
    const std::vector<std::vector<std::string>> wrong = {
        {},
        {"sync", "-c", existing_file},
        {"run"},
        {"run", "-c", "/nonexistent/comeback.yaml"},
        {"status", "-c", existing_file, "--once"},
        {"backfill", "-c", existing_file, "--from", "2024-01-01"},
        {"backfill", "-c", existing_file, "--from", "2024-02-30", "--to", "2024-03-01"},
        {"backfill", "-c", existing_file, "--from", "01/02/2024", "--to", "2024-03-01"},
        {"backfill", "-c", existing_file, "--from", "2024-03-02", "--to", "2024-03-01"},
        {"forget-contact", "-c", existing_file, "--customer", "M1"},
        {"forget-contact", "-c", existing_file, "--contact", "C1"},
        {"apply-privacy", "-c", existing_file, "--contact", "C1"},
    };
    for (const auto& args : wrong) {
        INFO("args: " << args.size());
        const auto outcome = parse(args);
        CHECK_FALSE(outcome.line);
        CHECK(outcome.exit_code == 2);
    }
}
