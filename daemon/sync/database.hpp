#pragma once
// Opening PostgreSQL connections for the daemon, with the limits of
// database.* on every session, and bringing the schema up to date at start.
// Connections are opened here and used through etl/load (all SQL lives there).
//
// Every session the daemon opens (its pool, its lease connection, its probe,
// migrate, backfill, status) gets, unless database.conninfo sets the same key:
//   libpq:    connect_timeout, keepalives=1, keepalives_idle/interval/count,
//             tcp_user_timeout (a dead path is noticed at the client);
//   session:  statement_timeout, lock_timeout, idle_in_transaction_session_timeout
//             and the server's own tcp_keepalives_idle/interval/count and
//             tcp_user_timeout (so a client host that died is noticed by the
//             server, which ends its session and frees its locks and leases).
// And a call that gets no answer at all (a path that swallows packets without
// a reset, which TCP alone may take minutes to notice) is cut from the client:
// database_connection::cut() shuts the socket down, and the call fails at once
// as database_lost.

#include "load/database_failure.hpp"
#include "load/pqxx_fwd.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace comeback {

struct database_config;

// The connection string libpq gets: database.conninfo (URI or key=value) as
// key=value, with the settings above added for every key it does not set.
// The session settings go first in `options`, before the conninfo's own
// `options` (or PGOPTIONS when it has none), so a setting given there wins.
// Holds the conninfo's password, if any: never log it. Throws
// std::invalid_argument with libpq's reason when the conninfo does not parse.
std::string session_conninfo(const database_config& config);

// The settings database.conninfo overrides, as "connect_timeout=5" lines (for
// check-config). Empty when it overrides none; never a password.
std::vector<std::string> conninfo_overrides(const database_config& config);

// Whether every server database.conninfo names (host and hostaddr, else
// libpq's PGHOST and PGHOSTADDR, else its default Unix socket) is this
// machine: a Unix socket directory, `localhost` or a loopback address. A
// host given by any other name counts as elsewhere (it is not resolved), and
// so does a service (pg_service.conf) that the conninfo names no host beside.
// Throws std::invalid_argument when the conninfo does not parse.
bool database_on_this_machine(const database_config& config);

// The connections a backfill opens at most: database.pool_size, unless the
// file left it out and the database runs on this machine, whose `cpus` it
// then shares: at most that many, and at least 2. A backfill's windows are
// mostly first loads of many rows, each a busy server process; more of them
// than there are cores to run them only contend (for the CPU, for extending
// the same table and its indexes) and take longer together than fewer do.
// `run` keeps the configured pool: its windows are small, and its loads
// wait on commits more than they compute. See docs/operations.md.
unsigned backfill_pool_size(const database_config& config, unsigned cpus);

// How long one call to the database may go without an answer before the
// daemon cuts its connection: a statement may run statement_timeout, and the
// call may first have to connect (connect_timeout).
std::chrono::milliseconds call_limit(const database_config& config);

// One open connection whose socket another thread may cut. Move-only; the
// connection's own work runs on one thread at a time.
class database_connection {
public:
    // Opens a connection (session_conninfo). Throws database_unreachable
    // (load/database_failure.hpp) naming the server libpq tried and saying
    // that the database failed, never a password.
    explicit database_connection(const database_config& config);
    ~database_connection();
    database_connection(const database_connection&) = delete;
    database_connection& operator=(const database_connection&) = delete;

    pqxx::connection& get() { return *connection_; }
    // "database NAME on HOST:PORT", for messages.
    const std::string& description() const { return description_; }

    // Shuts the socket down: the call in progress on another thread (or the
    // next one) fails at once as a lost connection. Thread-safe; idempotent.
    void cut() noexcept;
    bool was_cut() const noexcept;

    // False when the server has closed the connection (a restart, a
    // terminated backend) since it was last used. Never blocks; call from the
    // thread that owns the connection, between calls.
    bool alive() noexcept;

private:
    std::unique_ptr<pqxx::connection> connection_;
    std::string description_;
    mutable std::mutex mutex_;
    int socket_ = -1;  // a duplicate of libpq's socket: shutdown() reaches it, close() never races
    bool cut_ = false;
};

// Runs `work` on this thread with a watchman that cuts `connection` when
// `limit` passes first; the cut call then fails as no_answer_error
// (load/database_failure.hpp) saying so. For the commands that work on one
// connection without the pool (migrate, status, start-up).
void with_deadline(database_connection& connection, std::chrono::milliseconds limit,
                   const std::function<void(pqxx::connection&)>& work);

// Applies the embedded migrations to database.schema on `connection`, within
// call_limit, unless database.auto_migrate is false; returns how many it
// applied. Throws as migrate_at_start does.
int migrate_if_enabled(database_connection& connection, const database_config& config);

// What backfill does before any work: apply the embedded migrations to
// database.schema, unless database.auto_migrate is false, and log
// migrate.done. Returns the connection it used (null when auto_migrate is
// false), for the pool to go on with (db_workers::adopt). Throws
// database_unreachable, migration_error (load/migrations.hpp),
// no_answer_error and pqxx exceptions.
std::unique_ptr<database_connection> migrate_at_start(const database_config& config);

}  // namespace comeback
