#pragma once
// Windows confirmed from their response digests alone (confirm_unparsed,
// load/window_loader.hpp), as many as wait at once in one statement.
//
// A re-fetch of an unchanged window costs its confirmation, and when a
// backfill or a cycle re-fetches many such windows the confirmations, not the
// fetches, set the pace: each was a session checked out, a hand-off to its
// thread, a round trip and a hand-off back, and the windows queued for the
// pool's few connections. Here a window's confirmation waits in one queue;
// while a statement confirms the windows that were waiting when it began,
// those that arrive meanwhile wait for the next, which takes them all (at most
// one per customer, up to max_batch). So a burst costs a round trip per batch
// and one session.
//
// A lone window is sent at once unless the confirmer was made with a gather
// time: then the first window to find the queue idle waits that long for
// others before their statement is sent, or until gathered_enough windows
// wait, whichever comes first. A daemon re-fetching thousands of
// customers' windows steadily finds the queue idle at almost every window,
// and each statement alone costs its hand-offs between the threads (wake-ups
// that cost more CPU than the statement's own work on the client) and the
// server's fixed cost of a statement; gathered, they share both. What a
// window waits for it is nothing against a freshness interval of minutes, and
// a burst (a backfill, a daemon's first cycle) fills batches without it.
// A customer's turn waits for each window's answer before its next window,
// holding its place in the cycle gate (sync/cycle_gate.hpp), so the wait is
// cut short once a few windows share it: at a fleet's full pace they arrive
// within milliseconds, and most of what gathering saves is had by then.

#include "load/window_loader.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace comeback {

class db_workers;

class confirmer {
public:
    // Responses in one statement at most.
    static constexpr std::size_t max_batch = 64;
    // Windows waiting that end a gather early.
    static constexpr std::size_t gathered_enough = 4;

    // `db` must outlive the confirmer, and the confirmer every confirm().
    // `gather`: how long a window that finds the queue idle waits for others
    // (none: it is sent at once).
    confirmer(db_workers& db, std::string schema,
              std::chrono::milliseconds gather = std::chrono::milliseconds::zero());
    confirmer(const confirmer&) = delete;
    confirmer& operator=(const confirmer&) = delete;

    struct verdict {
        std::optional<load_counts> counts;  // set when the window was confirmed
        std::string response_digest;        // what finish_digest returned
    };

    // Offers the window's whole response, unparsed, to be confirmed from its
    // digest. `finish_digest` completes the response digest (it reads the
    // held body); it runs on a database thread, and what it reads must stay
    // put until this returns. Taken by reference, not by value, so the call
    // makes no temporary inside the caller's co_await (GCC 12 destroys such
    // temporaries twice). A window not confirmed had nothing written.
    // Throws database_error (load/database_failure.hpp) when the statement
    // failed or the window's fetch was stale (stale_fetch). Call from the
    // io_context's thread.
    boost::asio::awaitable<verdict> confirm(const window_key& key, const fetch_info& info,
                                            std::optional<fetch_ticket> ticket,
                                            std::function<std::string()>&& finish_digest);

    // Statements sent so far (for tests).
    std::uint64_t batches() const { return batches_; }

private:
    struct entry;
    // Sends batches on one session while windows wait.
    boost::asio::awaitable<void> drain();

    db_workers& db_;
    std::string schema_;
    std::chrono::milliseconds gather_;
    std::function<void()> end_gathering_;  // set while drain() gathers
    std::deque<std::shared_ptr<entry>> waiting_;
    bool draining_ = false;
    std::uint64_t batches_ = 0;
};

}  // namespace comeback
