#include "load/identifier.hpp"

#include <stdexcept>
#include <string>

namespace comeback {

bool is_valid_schema_name(std::string_view schema) {
    // PostgreSQL truncates identifiers at 63 bytes; a longer name would silently
    // become another schema.
    if (schema.empty() || schema.size() > 63) return false;
    auto lower_or_underscore = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
    if (!lower_or_underscore(schema.front())) return false;
    for (char c : schema) {
        if (!lower_or_underscore(c) && !(c >= '0' && c <= '9')) return false;
    }
    return true;
}

void check_schema_name(std::string_view schema) {
    if (!is_valid_schema_name(schema)) {
        throw std::invalid_argument("database schema name \"" + std::string(schema) +
                                    "\" is not a lower-case identifier ([a-z_][a-z0-9_]*, at most "
                                    "63 characters)");
    }
}

}  // namespace comeback
