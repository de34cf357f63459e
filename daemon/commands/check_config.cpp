#include "commands/commands.hpp"

#include "config/config.hpp"
#include "exit_codes.hpp"
#include "sync/database.hpp"

#include <iostream>

namespace comeback {

// load_config has already accepted the file by the time we get here (a bad one
// exits 2 in main); describe() never prints a secret.
int check_config_command(const command_line&, const config& cfg) {
    std::cout << describe(cfg);
    // database.conninfo wins over the database.* limits it sets itself.
    for (const std::string& key : conninfo_overrides(cfg.database)) {
        std::cout << "# database.conninfo sets " << key << ", which wins over the database.* setting\n";
    }
    std::cout << "configuration ok: " << cfg.source.string() << '\n';
    return exit_ok;
}

}  // namespace comeback
