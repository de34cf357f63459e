#pragma once
// PostgreSQL's failures as kinds of the one list (model/failure.hpp): the one
// place that decides which database errors pass on a retry and which need an
// operator.

#include "load/pqxx_fwd.hpp"
#include "model/failure.hpp"

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace comeback {

// The failure a database exception stands for, or nullopt when `error` is no
// database failure at all (std::logic_error, pqxx::usage_error, ...): a
// programming error, for the caller to let through.
//   database_lost:     pqxx::broken_connection and in_doubt_error, a statement
//                      whose completion is unknown, and the SQLSTATEs of lost
//                      connections (class 08), shutdowns (57P01-57P03),
//                      cancelled statements and timeouts (57014, 55P03, 25P03,
//                      57P05) and too many connections (53300);
//   database_conflict: serialization failures and deadlocks (class 40);
//   database_refused:  every other SQL error, with a message naming `database`
//                      (see describe_database), the SQLSTATE and what to check.
// Never throws except std::bad_alloc.
std::optional<failure> classify_database_error(const std::exception& error,
                                               std::string_view database);

// "database NAME on HOST:PORT" for messages, from an open connection; never a
// password. Call right after connecting. Never throws: falls back to "the
// database".
std::string describe_database(pqxx::connection& connection);

// A classified database failure, as db_workers hands it on: what() is the
// failure's message.
class database_error : public std::runtime_error {
public:
    explicit database_error(comeback::failure classified)
        : std::runtime_error(classified.message), failure_(std::move(classified)) {}
    const comeback::failure& failure() const { return failure_; }

private:
    comeback::failure failure_;
};

}  // namespace comeback
