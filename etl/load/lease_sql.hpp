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

// The customer's ($1) lease key in the current schema (search_path), its
// lease number drawn from sync_customers' identity the first time. Rows come
// from `known` or `added`, never both; none when another session registered
// the customer at the same moment (run it again: it is known then).
inline constexpr statement customer_key{"customer_key", R"sql(
WITH known AS (
    SELECT lease_key FROM sync_customers WHERE customer_id = $1
),
added AS (
    INSERT INTO sync_customers (customer_id)
    SELECT $1 WHERE NOT EXISTS (SELECT FROM known)
    ON CONFLICT (customer_id) DO NOTHING
    RETURNING lease_key
)
SELECT ((n.oid::bigint - 2147483648) << 32) | k.lease_key
FROM pg_namespace n,
     (SELECT lease_key FROM known UNION ALL SELECT lease_key FROM added) k
WHERE n.nspname = current_schema()
)sql"};

// Instance slot $1's lease key in the current schema.
inline constexpr statement instance_slot_key{"instance_slot_key", R"sql(
SELECT ((n.oid::bigint - 2147483648) << 32) | (2147483648 + $1::bigint)
FROM pg_namespace n
WHERE n.nspname = current_schema()
)sql"};

inline constexpr statement try_acquire{"try_acquire", R"sql(
SELECT pg_try_advisory_lock($1::bigint)
)sql"};

inline constexpr statement release{"release", R"sql(
SELECT pg_advisory_unlock($1::bigint)
)sql"};

inline constexpr std::array statements{customer_key, instance_slot_key, try_acquire, release};

}  // namespace comeback::sql::lease
