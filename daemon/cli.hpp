#pragma once
// The command line: `comeback-sync <command> -c FILE [options]`.

#include <date/date.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace comeback {

enum class command { migrate, run, backfill, status, check_config, forget_contact, apply_privacy };

struct command_line {
    command what = command::check_config;
    std::filesystem::path config_file;
    bool once = false;                      // run --once
    date::local_days from{};                // backfill --from (inclusive)
    date::local_days to{};                  // backfill --to (inclusive)
    std::vector<std::string> customers;     // backfill --customer, repeatable; empty: all
    bool force = false;                     // backfill --force (or --recheck)
    bool recheck = false;                   // backfill --recheck
    bool accept_deletes = false;            // backfill --accept-deletes
    bool json = false;                      // status --json
    std::string customer;                   // forget-contact --customer
    std::string contact;                    // forget-contact --contact
};

// Parses argv. Returns the command line, or the exit code to leave with when
// the parse itself finished the job: 0 after --help or --version, 2 after a
// usage error (already explained on stderr).
struct parse_outcome {
    std::optional<command_line> line;
    int exit_code = 0;
};
parse_outcome parse_command_line(int argc, char** argv);

}  // namespace comeback
