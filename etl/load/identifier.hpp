#pragma once
// The configured schema name is the one identifier that reaches SQL text; it is
// checked here, once, and quoted. Everything else travels as a parameter.

#include <string>
#include <string_view>

namespace comeback {

// True for a lower-case SQL identifier: [a-z_][a-z0-9_]*, at most 63 bytes.
bool is_valid_schema_name(std::string_view schema);

// The schema name double-quoted for SQL text. Throws std::invalid_argument
// naming the value when is_valid_schema_name() is false.
std::string quoted_schema(std::string_view schema);

}  // namespace comeback
