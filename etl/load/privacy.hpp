#pragma once
// Erasing and rewriting personal data already stored: forget-contact and
// apply-privacy (docs/privacy.md). Loads keep to the same rules as they go
// (window_loader): an erased contact never gets a name again, omitted names
// stay NULL, rejected rows' raw text is emptied after its retention.
//
// Each function runs its own transaction in `schema` and throws
// std::invalid_argument (a bad schema name) and pqxx exceptions (the database
// failed; nothing was written).

#include "load/pqxx_fwd.hpp"
#include "normalize/normalize.hpp"

#include <chrono>
#include <cstddef>
#include <string_view>

namespace comeback {

// What replaces a rejected row's reason, or a ledger error, that could name
// an erased contact.
inline constexpr std::string_view withheld_text = "(withheld: names an erased contact)";

struct contact_erasure {
    bool newly_recorded = false;  // false: the contact was erased before
    bool name_erased = false;     // the contacts row had a name, and has none now
    std::size_t rejected_rows_withheld = 0;
    std::size_t ledger_errors_withheld = 0;
};

// Erases the contact's name wherever comeback-sync stored it (contacts, the
// raw text and reason of rejected rows, ledger errors) and records the
// erasure (contact_erasures: the ids and when, never the name), so later
// loads keep it erased. Waits for the customer's loads (their lock), so none
// writes the name back in between. A contact not stored yet is recorded all
// the same.
contact_erasure forget_contact(pqxx::connection& connection, std::string_view schema,
                               std::string_view customer_id, std::string_view contact_id);

// Rewrites every stored contact name by `rule` at once: pseudonymize turns
// names that are not pseudonyms yet into theirs, omit empties them, keep
// changes nothing (names come back as each window is loaded next). Returns
// how many names it rewrote.
std::size_t rewrite_contact_names(pqxx::connection& connection, std::string_view schema,
                                  const contact_name_rule& rule);

// Empties the raw text of every customer's rejected rows last seen
// `retention` ago or longer. Returns how many rows it emptied.
std::size_t purge_rejected_raw(pqxx::connection& connection, std::string_view schema,
                               std::chrono::seconds retention);

}  // namespace comeback
