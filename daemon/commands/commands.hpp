#pragma once
// One function per subcommand. Each returns an exit code (exit_codes.hpp) and
// catches what it can explain; anything else reaches main()'s one handler.

#include "cli.hpp"

namespace comeback {

struct config;

int check_config_command(const command_line& line, const config& cfg);
int migrate_command(const command_line& line, const config& cfg);
int status_command(const command_line& line, const config& cfg);
int run_command(const command_line& line, config cfg);
int backfill_command(const command_line& line, const config& cfg);
int forget_contact_command(const command_line& line, const config& cfg);
int apply_privacy_command(const command_line& line, const config& cfg);

}  // namespace comeback
