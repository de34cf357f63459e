#pragma once
// The lease statements (see lease.hpp). A lease is a session advisory lock
// with one bigint key, a space PostgreSQL keeps apart from the (int, int) keys
// of the loader's and the migrator's locks. The key's high 32 bits are the
// schema's OID (shifted into int4's range), so schemas in one database never
// meet; its low 32 bits are a customer's lease_key (1 .. 2^31 - 1, from
// sync_customers, unique by construction) or 2^31 + n for instance slot n.
// Customer ids are never hashed: two of them cannot share a lease, and none can
// be an instance slot.

#include "load/statement.hpp"

namespace comeback::sql::lease {

// The lease keys of the customers in $1 (a text array) in the current schema
// (search_path), one row each: the customer id and its key, its lease number
// drawn from sync_customers' identity the first time. Rows come from `known`
// or `added`, never both; a customer another session registered at the same
// moment has none (run it again for those: they are known then). One
// statement and one commit for a whole fleet, where a statement and a durable
// commit per customer kept a daemon of 10,000 customers from its first fetch
// for seconds.
inline constexpr statement customer_keys{"customer_keys", R"sql(
WITH wanted AS (
    SELECT DISTINCT u.customer_id COLLATE "C" AS customer_id FROM unnest($1::text[]) AS u(customer_id)
),
known AS (
    SELECT s.customer_id, s.lease_key
    FROM wanted w
    JOIN sync_customers s ON s.customer_id = w.customer_id
),
added AS (
    INSERT INTO sync_customers (customer_id)
    SELECT w.customer_id FROM wanted w
    WHERE NOT EXISTS (SELECT FROM known k WHERE k.customer_id = w.customer_id)
    ORDER BY w.customer_id
    ON CONFLICT (customer_id) DO NOTHING
    RETURNING customer_id, lease_key
)
SELECT k.customer_id, ((n.oid::bigint - 2147483648) << 32) | k.lease_key
FROM pg_namespace n,
     (SELECT customer_id, lease_key FROM known UNION ALL SELECT customer_id, lease_key FROM added) k
WHERE n.nspname = current_schema()
)sql"};

// Instance slot $1's lease key in the current schema.
inline constexpr statement instance_slot_key{"instance_slot_key", R"sql(
SELECT ((n.oid::bigint - 2147483648) << 32) | (2147483648 + $1::bigint)
FROM pg_namespace n
WHERE n.nspname = current_schema()
)sql"};

// Tries each lease key of $1 (a bigint array) once, without waiting: one row
// per key, its position in $1 (from 1) and whether this session took it.
inline constexpr statement try_acquire_each{"try_acquire_each", R"sql(
SELECT u.position, pg_try_advisory_lock(u.key)
FROM unnest($1::bigint[]) WITH ORDINALITY AS u(key, position)
)sql"};

// Releases one hold of each lease key of $1 (a bigint array): one row per
// key, its position in $1 (from 1) and whether this session held it.
inline constexpr statement release_each{"release_each", R"sql(
SELECT u.position, pg_advisory_unlock(u.key)
FROM unnest($1::bigint[]) WITH ORDINALITY AS u(key, position)
)sql"};

inline constexpr std::array statements{customer_keys, instance_slot_key, try_acquire_each, release_each};

}  // namespace comeback::sql::lease
