#pragma once
// The customer lease's statements (see lease.hpp). Advisory locks share one
// key space across the database: the first key half names the schema's lease
// space ('comeback-sync/lease/' and $1, the schema), distinct from the
// loader's and the migrator's; the second is the customer ($2).

#include "load/statement.hpp"

namespace comeback::sql::lease {

inline constexpr statement try_acquire{"try_acquire", R"sql(
SELECT pg_try_advisory_lock(hashtext('comeback-sync/lease/' || $1), hashtext($2))
)sql"};

inline constexpr statement release{"release", R"sql(
SELECT pg_advisory_unlock(hashtext('comeback-sync/lease/' || $1), hashtext($2))
)sql"};

inline constexpr std::array statements{try_acquire, release};

}  // namespace comeback::sql::lease
