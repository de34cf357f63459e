# Writes OUTPUT, a C++ source holding every migration in INPUTS (schema/*.sql):
# version and name from the file name (NNN_name.sql), the text, and its SHA-256.
# Run by etl/load/CMakeLists.txt at build time.
cmake_minimum_required(VERSION 3.25)
set(entries "")
set(seen_versions "")
foreach(file IN LISTS INPUTS)
    get_filename_component(base ${file} NAME)
    if(NOT base MATCHES "^([0-9]+)_([a-z0-9_]+)\\.sql$")
        message(FATAL_ERROR "schema/${base}: a migration is named NNN_name.sql (digits, then lower-case name)")
    endif()
    math(EXPR version "${CMAKE_MATCH_1}")
    string(REGEX REPLACE "\\.sql$" "" name "${base}")
    if(version IN_LIST seen_versions)
        message(FATAL_ERROR "schema/${base}: version ${version} is used by two migrations")
    endif()
    list(APPEND seen_versions ${version})
    file(READ ${file} text)
    file(SHA256 ${file} checksum)
    if(text MATCHES "\\)comeback_sql\"")
        message(FATAL_ERROR "schema/${base} contains the raw-string delimiter )comeback_sql\"")
    endif()
    string(APPEND entries "    {${version}, \"${name}\", R\"comeback_sql(${text})comeback_sql\", \"${checksum}\"},\n")
endforeach()
if(entries STREQUAL "")
    message(FATAL_ERROR "no migrations found under schema/")
endif()
file(WRITE ${OUTPUT}.tmp "// Built from schema/*.sql by etl/load/embed_migrations.cmake; edit those files instead.
#include \"load/embedded_migrations.hpp\"

namespace comeback {

namespace {
const embedded_migration migrations[] = {
${entries}};
}  // namespace

std::span<const embedded_migration> embedded_migrations() { return migrations; }

}  // namespace comeback
")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
