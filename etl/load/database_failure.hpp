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
//                      whose completion is unknown, no_answer_error, and the
//                      SQLSTATEs of lost connections (class 08), shutdowns
//                      (57P01-57P03), idle_session_timeout (57P05) and too
//                      many connections (53300), and database_unreachable;
//   database_timeout:  the session limits the daemon sets: statement_timeout
//                      or a cancel (57014), lock_timeout (55P03),
//                      idle_in_transaction_session_timeout (25P03);
//   stale_fetch:       stale_fetch_error (load/fencing.hpp);
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

// A connection to the database could not be opened. what() says that
// PostgreSQL is what failed, names the server as libpq tried it (host, port)
// and what to check, never a password.
class database_unreachable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown when the daemon cut a connection because the server did not answer a
// call within its limit (daemon/sync/database.hpp): what() says how long.
class no_answer_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown by a window's load when a fetch of the same window that began later
// has committed first (load/fencing.hpp): the older response must not be
// written. what() names the window and both fetches.
class stale_fetch_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown by the load of a window fetched without a ticket because it had never
// been loaded (load_options::first_load_unticketed), when a load of the window
// has committed since after all (load/fencing.hpp): the load wrote nothing,
// rolled back and left its connection usable, and the window is to be fetched
// again, with a ticket. No failure: the response was good.
class loaded_meanwhile : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

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
