// comeback-sync: parse the command line, load the configuration once, hand
// over to the subcommand. The single place where unexpected exceptions end.

#include "cli.hpp"
#include "commands/commands.hpp"
#include "config/config.hpp"
#include "exit_codes.hpp"
#include "observability/logging.hpp"
#include "sync/response_hold.hpp"

#include <malloc.h>
#include <sys/prctl.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <utility>

int main(int argc, char** argv) {
    using namespace comeback;
    // Before any password is read: no core dump (and no ptrace by other
    // processes of this user) may carry one away. LimitCORE=0 in the unit says
    // the same to systemd.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    // A database thread per pooled connection (sync/db_workers.hpp) would
    // give glibc up to 8 heaps per core, each keeping what its thread freed;
    // the threads mostly wait on the network, so two heaps serve them all and
    // the resident size stays that of the work in flight. MALLOC_ARENA_MAX in
    // the environment still wins.
    if (::getenv("MALLOC_ARENA_MAX") == nullptr) ::mallopt(M_ARENA_MAX, 2);
    keep_held_buffers_mapped();  // sync/response_hold.hpp

    const parse_outcome parsed = parse_command_line(argc, argv);
    if (!parsed.line) return parsed.exit_code;
    const command_line& line = *parsed.line;

    // Every connection names the program in pg_stat_activity, unless the
    // conninfo or the environment already chose a name.
    ::setenv("PGAPPNAME", "comeback-sync", 0);

    config cfg;
    try {
        cfg = load_config(line.config_file);
        setup_logging(cfg.log);
    } catch (const config_error& error) {
        std::cerr << "comeback-sync: " << error.what() << '\n';
        return exit_usage;
    } catch (const std::invalid_argument& error) {
        std::cerr << "comeback-sync: " << line.config_file.string() << ": " << error.what() << '\n';
        return exit_usage;
    }

    if (auto warning = insecure_http_warning(cfg))
        log_event(spdlog::level::warn, "config.insecure_http",
                  {{"base_url", cfg.vitec.base_url.text}, {"warning", *warning}});

    try {
        switch (line.what) {
        case command::check_config: return check_config_command(line, cfg);
        case command::migrate: return migrate_command(line, cfg);
        case command::status: return status_command(line, cfg);
        case command::run: return run_command(line, std::move(cfg));
        case command::backfill: return backfill_command(line, cfg);
        case command::forget_contact: return forget_contact_command(line, cfg);
        case command::apply_privacy: return apply_privacy_command(line, cfg);
        }
    } catch (const std::exception& error) {
        // Infrastructure loss or a bug: the work could not be done.
        log_event(spdlog::level::critical, "command.failed", {{"error", error.what()}});
        return exit_windows_failed;
    }
    return exit_ok;
}
