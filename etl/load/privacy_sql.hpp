#pragma once
// The statements of forget-contact and apply-privacy (see privacy.hpp). The
// loader's own privacy rules (erased contacts, omitted names, the rejected
// rows' retention) are in window_loader_sql.hpp, beside the loads they shape.

#include "load/statement.hpp"

namespace comeback::sql::privacy {

// $1 customer, $2 contact: the name stored for the contact (no row: none).
inline constexpr statement read_contact_name{"read_contact_name", R"sql(
SELECT name FROM contacts WHERE customer_id = $1 AND contact_id = $2
)sql"};

// Records that the contact ($1 customer, $2 contact) was erased; an erasure
// already recorded keeps its first date. Returns a row when it is new.
inline constexpr statement record_erasure{"record_erasure", R"sql(
INSERT INTO contact_erasures (customer_id, contact_id, erased_at)
VALUES ($1, $2, clock_timestamp())
ON CONFLICT (customer_id, contact_id) DO NOTHING
RETURNING erased_at
)sql"};

inline constexpr statement erase_contact_name{"erase_contact_name", R"sql(
UPDATE contacts SET name = NULL
WHERE customer_id = $1 AND contact_id = $2 AND name IS NOT NULL
)sql"};

// The customer's ($1) rejected rows whose raw text holds the contact's id
// ($2) or whose raw text or reason holds its last known name ($3, '' when
// none): both lose what could name the contact. $4: the reason they get.
inline constexpr statement withhold_rejected_rows{"withhold_rejected_rows", R"sql(
UPDATE rejected_rows
SET raw = NULL, reason = $4
WHERE customer_id = $1 AND reason <> $4
  AND (strpos(coalesce(raw, ''), $2) > 0
       OR ($3 <> '' AND (strpos(coalesce(raw, ''), $3) > 0 OR strpos(reason, $3) > 0)))
)sql"};

// The customer's ($1) ledger errors quoting the contact's last known name
// ($2, never ''): a rejected element's reason may have reached one. $3: the
// text they get.
inline constexpr statement withhold_ledger_errors{"withhold_ledger_errors", R"sql(
UPDATE sync_windows
SET last_error = $3
WHERE customer_id = $1 AND strpos(last_error, $2) > 0
)sql"};

// privacy.contact_names: omit, for the names already stored.
inline constexpr statement omit_contact_names{"omit_contact_names", R"sql(
UPDATE contacts SET name = NULL WHERE name IS NOT NULL
)sql"};

// The next $3 contacts with a name after ($1, $2) in key order, for
// pseudonymizing the stored names a page at a time.
inline constexpr statement read_named_contacts{"read_named_contacts", R"sql(
SELECT customer_id, contact_id, name
FROM contacts
WHERE name IS NOT NULL AND (customer_id, contact_id) > ($1, $2)
ORDER BY customer_id, contact_id
LIMIT $3
)sql"};

// $1, $2, $3: arrays of customer ids, contact ids and their new names.
inline constexpr statement set_contact_names{"set_contact_names", R"sql(
UPDATE contacts c
SET name = u.name
FROM unnest($1::text[], $2::text[], $3::text[]) AS u (customer_id, contact_id, name)
WHERE c.customer_id = u.customer_id AND c.contact_id = u.contact_id
)sql"};

// Every customer's rejected rows last seen $1 seconds ago or longer lose
// their raw text (privacy.rejected_raw_retention); the sync does it per
// customer as each cycle begins (sql::ledger::plan_windows).
inline constexpr statement purge_all_rejected_raw{"purge_all_rejected_raw", R"sql(
UPDATE rejected_rows
SET raw = NULL
WHERE raw IS NOT NULL AND last_seen_at <= clock_timestamp() - $1::bigint * interval '1 second'
)sql"};

inline constexpr std::array statements{read_contact_name,      record_erasure,
                                       erase_contact_name,     withhold_rejected_rows,
                                       withhold_ledger_errors, omit_contact_names,
                                       read_named_contacts,    set_contact_names,
                                       purge_all_rejected_raw};

}  // namespace comeback::sql::privacy
