#pragma once
// The migrations of schema/, compiled into the library (embed_migrations.cmake).

#include <span>
#include <string_view>

namespace comeback {

struct embedded_migration {
    int version;
    std::string_view name;      // file name without .sql, e.g. "001_initial"
    std::string_view sql;
    std::string_view checksum;  // SHA-256 of the file, hex
};

// Every migration, in file-name order (which is version order). Static storage.
std::span<const embedded_migration> embedded_migrations();

}  // namespace comeback
