// `forget-contact` and `apply-privacy`: personal data already stored, erased
// or rewritten at once (docs/privacy.md). Loads keep to the same rules as
// they go.

#include "commands/commands.hpp"

#include "config/config.hpp"
#include "exit_codes.hpp"
#include "load/migrations.hpp"
#include "load/privacy.hpp"
#include "observability/logging.hpp"
#include "sync/database.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <iostream>

namespace comeback {

namespace {

std::unique_ptr<pqxx::connection> open_migrated(const config& cfg) {
    auto connection = open_database(cfg.database);
    if (cfg.database.auto_migrate) migrate(*connection, cfg.database.schema);
    return connection;
}

const char* yes_no(bool value) { return value ? "yes" : "no"; }

}  // namespace

int forget_contact_command(const command_line& line, const config& cfg) {
    const bool configured = std::any_of(cfg.customers.begin(), cfg.customers.end(),
                                        [&](const customer_config& c) { return c.id == line.customer; });
    if (!configured) {
        std::cerr << "comeback-sync: forget-contact --customer " << line.customer << ": no such customer in "
                  << cfg.source.string() << '\n';
        return exit_usage;
    }
    auto connection = open_migrated(cfg);
    const contact_erasure erasure = forget_contact(*connection, cfg.database.schema, line.customer, line.contact);
    log_event(spdlog::level::info, "contact.forgotten",
              {{"customer", line.customer},
               {"contact", line.contact},
               {"new", erasure.newly_recorded},
               {"name_erased", erasure.name_erased},
               {"rejected_rows_withheld", erasure.rejected_rows_withheld},
               {"ledger_errors_withheld", erasure.ledger_errors_withheld}});
    std::cout << "customer " << line.customer << ", contact " << line.contact << ":\n"
              << "  erasure recorded:        " << (erasure.newly_recorded ? "yes" : "already before") << '\n'
              << "  contact name erased:     " << yes_no(erasure.name_erased) << '\n'
              << "  rejected rows withheld:  " << erasure.rejected_rows_withheld << '\n'
              << "  ledger errors withheld:  " << erasure.ledger_errors_withheld << '\n'
              << "later syncs keep the name erased although Vitec keeps sending it\n";
    return exit_ok;
}

int apply_privacy_command(const command_line&, const config& cfg) {
    auto connection = open_migrated(cfg);
    const auto& privacy = cfg.privacy;
    const std::size_t rewritten = rewrite_contact_names(
        *connection, cfg.database.schema, {privacy.contact_names, privacy.pseudonym_key.reveal()});
    const std::size_t purged =
        purge_rejected_raw(*connection, cfg.database.schema, privacy.rejected_raw_retention);
    log_event(spdlog::level::info, "privacy.applied",
              {{"contact_names", to_string(privacy.contact_names)},
               {"names_rewritten", rewritten},
               {"raw_texts_emptied", purged}});
    std::cout << "contact names (" << to_string(privacy.contact_names) << "): " << rewritten << " rewritten";
    if (privacy.contact_names == contact_names::keep) {
        std::cout << " (names come back as each window is loaded next)";
    }
    std::cout << "\nrejected rows' raw text older than " << format_duration(privacy.rejected_raw_retention)
              << ": " << purged << " emptied\n";
    return exit_ok;
}

}  // namespace comeback
