// `forget-contact` and `apply-privacy`: personal data already stored, erased
// or rewritten at once (docs/privacy.md). Loads keep to the same rules as
// they go.

#include "commands/commands.hpp"

#include "config/config.hpp"
#include "exit_codes.hpp"
#include "load/privacy.hpp"
#include "observability/logging.hpp"
#include "sync/database.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <iostream>

namespace comeback {

namespace {

// One call on the connection, cut should the database stop answering (database.*).
template <typename Result, typename Work>
Result on_database(database_connection& connection, const config& cfg, Work work) {
    Result result{};
    with_deadline(connection, call_limit(cfg.database), [&](pqxx::connection& c) { result = work(c); });
    return result;
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
    database_connection connection(cfg.database);
    migrate_if_enabled(connection, cfg.database);
    const auto erasure = on_database<contact_erasure>(connection, cfg, [&](pqxx::connection& c) {
        return forget_contact(c, cfg.database.schema, line.customer, line.contact);
    });
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
    database_connection connection(cfg.database);
    migrate_if_enabled(connection, cfg.database);
    const auto& privacy = cfg.privacy;
    const auto rewritten = on_database<std::size_t>(connection, cfg, [&](pqxx::connection& c) {
        return rewrite_contact_names(c, cfg.database.schema,
                                     {privacy.contact_names, privacy.pseudonym_key.reveal()});
    });
    const auto purged = on_database<std::size_t>(connection, cfg, [&](pqxx::connection& c) {
        return purge_rejected_raw(c, cfg.database.schema, privacy.rejected_raw_retention);
    });
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
