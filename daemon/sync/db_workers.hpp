#pragma once
// Database work off the I/O thread: a bounded set of PostgreSQL connections
// (database.pool_size) and a thread for each session, so no session's round
// trip waits for another's. A coroutine on the io_context checks out a session
// (one connection, waiting when all are out), hands blocking libpq work to the
// session's thread with run(), and resumes on its own executor when the work
// is done, so fetching and loading overlap without the I/O thread ever
// blocking on SQL.
//
// Every call has a limit (database.hpp, call_limit): a call the server has
// not answered by then has its connection cut and fails as database_lost, so
// no call waits for ever on a path that swallows packets. stalled() tells
// whether the workers still make progress: the systemd watchdog is fed only
// while they do.

#include "config/config.hpp"
#include "load/pqxx_fwd.hpp"
#include "model/wait_stats.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace comeback {

class database_connection;

class db_workers {
    struct shared_state;
    struct call_state;

public:
    // `io` is where callers run (the io_context); `threads` threads, one
    // for each session at once (checked out and dedicated);
    // at most `connections` connections open at once (plus dedicated ones).
    // run and backfill open database.pool_size connections (config.hpp,
    // default_pool_size; the request limiter, not the pool, paces Vitec) with
    // as many threads, plus one per dedicated session (the lease keeper's).
    db_workers(boost::asio::any_io_executor io, database_config config, std::size_t threads,
               std::size_t connections);
    // Stops the pool: queued work is dropped, running work finishes.
    ~db_workers();
    db_workers(const db_workers&) = delete;
    db_workers& operator=(const db_workers&) = delete;

    // One connection, for one piece of work (a window attempt, a ledger read).
    // Returned to the pool when the session is destroyed. Move-only.
    class session {
    public:
        session();
        session(session&&) noexcept;
        session& operator=(session&&) noexcept;
        ~session();

        // Runs `work` with the connection on a pool thread. Opens the
        // connection first when needed, and opens it anew when the server
        // closed it since its last use (a restart, a terminated backend). A
        // database failure, from opening or from `work`, reaches the caller as
        // comeback::database_error with its kind (load/database_failure.hpp);
        // any other exception from `work` (a programming error) as it was
        // thrown. When `work` has not returned `limit` after it started
        // (default: call_limit of the configuration) the connection is cut
        // and the call fails as database_lost. Unless the server answered
        // (database_refused, database_conflict, database_timeout,
        // stale_fetch) the connection is dropped and reopened by the next
        // run(), so whatever `work` built on it must be gone by then.
        boost::asio::awaitable<void> run(std::function<void(pqxx::connection&)> work);
        boost::asio::awaitable<void> run(std::function<void(pqxx::connection&)> work,
                                         std::chrono::milliseconds limit);

        // For work that keeps what it built on the connection from one run()
        // to the next (a window's loader and its transaction): from now on a
        // connection the server closed is not replaced before a call, so the
        // call fails on it and the work can drop what it built, on the pool
        // thread, while the connection still exists; the failed call then
        // drops the connection as usual.
        void pin() noexcept { pinned_ = true; }

        // True when the session had a connection and the server has closed it
        // since its last call. Never blocks; not while a run() is in progress.
        bool connection_lost();

    private:
        friend class db_workers;
        std::shared_ptr<shared_state> state_;
        std::unique_ptr<database_connection> connection_;
        std::size_t lane_ = 0;    // the thread its calls run on
        bool owns_lane_ = false;  // the lane is this session's alone
        bool counted_ = false;  // holds one of the bounded slots
        bool pinned_ = false;   // see pin()
    };

    // Waits until a connection slot is free. Call from the io_context only.
    // The session takes an idle connection; when every open one is out, it
    // waits a little for one to come back before it opens another at its
    // first run(), and the pool opens one more connection at a time, so it
    // grows to what the work keeps busy, not to what a burst of short calls
    // touches at once (db_workers.cpp, reuse_wait).
    boost::asio::awaitable<session> checkout();
    // Hands the pool a connection opened elsewhere (start-up's migration
    // check), to be used as if the pool had opened it. Call from the
    // io_context's thread, or before it runs.
    void adopt(std::unique_ptr<database_connection> connection);
    // From now on counts the checkouts, those waiting now and their waits
    // (for a slot, or for a connection to come back), into `stats`
    // (model/wait_stats.hpp). Call from the io_context's thread, or before it runs.
    void count_checkouts(std::shared_ptr<wait_stats> stats);
    // A session outside the bound, for long-lived holders (the lease keeper).
    session dedicated();

    // Why the workers make no progress: a call still running well past its
    // limit, which cutting its connection did not end. Empty while every call
    // ends within its bound. Thread-safe.
    std::optional<std::string> stalled(std::chrono::steady_clock::time_point now =
                                           std::chrono::steady_clock::now()) const;

    const database_config& config() const;

    // Calls handed to a pool thread so far (session::run), each a hand-off
    // from the I/O thread and back. Thread-safe.
    std::uint64_t calls() const;
    // Connections the sessions opened so far, and those adopted. Thread-safe.
    std::uint64_t connections_opened() const;

    // Drops queued work and waits for running work; idempotent.
    void stop();

private:
    std::shared_ptr<shared_state> state_;
};

}  // namespace comeback
