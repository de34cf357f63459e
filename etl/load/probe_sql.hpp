#pragma once
// The database probe's statement (see probe.hpp).

#include "load/statement.hpp"

namespace comeback::sql::probe {

// Answers at all, and says whether the server is a standby, which would
// refuse every write of a load.
inline constexpr statement in_recovery{"in_recovery", R"sql(
SELECT pg_is_in_recovery()
)sql"};

inline constexpr std::array statements{in_recovery};

}  // namespace comeback::sql::probe
