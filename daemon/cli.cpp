#include "cli.hpp"

#include "exit_codes.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>

namespace comeback {

namespace {

// Reads YYYY-MM-DD; CLI11 reports the returned text as the option's error.
std::string read_day(const std::string& text, date::local_days& day) {
    const std::string error = "'" + text + "' is not a date (use YYYY-MM-DD)";
    const bool shaped = text.size() == 10 && text[4] == '-' && text[7] == '-' &&
                        std::all_of(text.begin(), text.end(), [](char c) { return c == '-' || std::isdigit(static_cast<unsigned char>(c)); });
    if (!shaped) return error;
    const date::year_month_day ymd{date::year{std::stoi(text.substr(0, 4))},
                                   date::month{static_cast<unsigned>(std::stoi(text.substr(5, 2)))},
                                   date::day{static_cast<unsigned>(std::stoi(text.substr(8, 2)))}};
    if (!ymd.ok()) return error;
    day = date::local_days{ymd};
    return {};
}

void add_config_option(CLI::App& sub, command_line& line) {
    sub.add_option("-c,--config", line.config_file, "configuration file (YAML)")
        ->required()
        ->check(CLI::ExistingFile);
}

}  // namespace

parse_outcome parse_command_line(int argc, char** argv) {
    command_line line;
    std::string from_text;
    std::string to_text;

    CLI::App app{"comeback-sync: keeps a PostgreSQL copy of Vitec Connect's comeback report"};
    app.set_version_flag("--version", std::string("comeback-sync ") + COMEBACK_SYNC_VERSION);
    app.require_subcommand(1);

    auto* migrate = app.add_subcommand("migrate", "apply database migrations and exit");
    add_config_option(*migrate, line);

    auto* run = app.add_subcommand("run", "keep every customer's windows fresh, fill history");
    add_config_option(*run, line);
    run->add_flag("--once", line.once, "do one full cycle for every customer and exit");

    auto* backfill = app.add_subcommand("backfill", "fetch a date range once and exit");
    add_config_option(*backfill, line);
    backfill->add_option("--from", from_text, "first day, YYYY-MM-DD (inclusive)")->required();
    backfill->add_option("--to", to_text, "last day, YYYY-MM-DD (inclusive)")->required();
    backfill->add_option("--customer", line.customers, "only this customer id (repeatable)");
    backfill->add_flag("--force", line.force, "refetch windows the ledger shows complete");
    backfill->add_flag("--recheck", line.recheck,
                       "implies --force; compare every row with the database even when a window's "
                       "response equals its last load (repairs rows changed by hand)");
    backfill->add_flag("--accept-deletes", line.accept_deletes,
                       "apply the soft deletes of windows the deletion guard would hold (a shrink "
                       "checked to be real)");

    auto* status = app.add_subcommand("status", "show the sync state per customer");
    add_config_option(*status, line);
    status->add_flag("--json", line.json, "one JSON document for scripts");

    auto* check = app.add_subcommand("check-config", "validate and print the configuration");
    add_config_option(*check, line);

    auto* forget = app.add_subcommand(
        "forget-contact", "erase a contact's name wherever it is stored, and keep it erased");
    add_config_option(*forget, line);
    forget->add_option("--customer", line.customer, "the customer id")->required();
    forget->add_option("--contact", line.contact, "the contact id (contact.id)")->required();

    auto* privacy = app.add_subcommand(
        "apply-privacy", "apply the privacy settings to every stored contact name and rejected row now");
    add_config_option(*privacy, line);

    try {
        app.parse(argc, argv);
        if (backfill->parsed()) {
            for (auto [text, day, name] : {std::tuple{&from_text, &line.from, "--from"},
                                           std::tuple{&to_text, &line.to, "--to"}}) {
                if (auto error = read_day(*text, *day); !error.empty()) {
                    throw CLI::ValidationError(name, error);
                }
            }
            if (line.to < line.from) {
                throw CLI::ValidationError("--to", "--to " + to_text + " is before --from " + from_text);
            }
        }
    } catch (const CLI::ParseError& error) {
        const int code = app.exit(error);  // prints help, version or the error
        return {std::nullopt, code == 0 ? exit_ok : exit_usage};
    }

    if (migrate->parsed()) line.what = command::migrate;
    if (run->parsed()) line.what = command::run;
    if (backfill->parsed()) line.what = command::backfill;
    if (status->parsed()) line.what = command::status;
    if (check->parsed()) line.what = command::check_config;
    if (forget->parsed()) line.what = command::forget_contact;
    if (privacy->parsed()) line.what = command::apply_privacy;
    return {line, exit_ok};
}

}  // namespace comeback
