#pragma once
// The configured schema name reaches SQL only as a parameter (search_path,
// advisory lock keys); it is checked here, once, so a bad name is refused with
// a message naming it instead of reaching the database.

#include <string_view>

namespace comeback {

// True for a lower-case SQL identifier: [a-z_][a-z0-9_]*, at most 63 bytes.
bool is_valid_schema_name(std::string_view schema);

// Throws std::invalid_argument naming the value when is_valid_schema_name()
// is false.
void check_schema_name(std::string_view schema);

}  // namespace comeback
