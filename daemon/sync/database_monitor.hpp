#pragma once
// Whether the database answers, known within a bound whatever the network
// does. A probe runs every database.probe_interval on a connection and a
// thread of its own (so a pool busy with loads cannot delay it), with a limit
// of twice database.connect_timeout (connect, then answer); a probe that
// fails, or the load workers found stuck (db_workers::stalled), makes the
// database down. So /healthz turns 503 within probe_interval + 2 x
// connect_timeout of an outage (30 s with the defaults) and back to 200 at the
// first probe that is answered.
//
// Work that needs the database waits on it rather than burning attempts: a
// window's next attempt after database_lost, a customer's next cycle, the
// lease keeper's next round and `run`'s start-up all wait until the database
// answers again, woken by recovered() at once when it does.
//
// Logs database.unreachable (error) when the database goes down and every
// minute it stays down, and database.recovered (info) when it answers again.
// Used from the io_context thread only.

#include "config/config.hpp"
#include "sync/db_workers.hpp"
#include "sync/shutdown.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace comeback {

class database_monitor {
public:
    using clock = std::chrono::system_clock;
    // Told of every probe's result: up, the reason when down, the last time
    // the database answered (none yet: empty).
    using listener = std::function<void(bool up, const std::string& reason, std::optional<clock::time_point> last_ok)>;

    // `workers` (may be null) are the load workers whose progress counts too.
    database_monitor(boost::asio::any_io_executor io, const database_config& config,
                     shutdown_signal& shutdown, const db_workers* workers = nullptr,
                     listener on_probe = {});
    ~database_monitor();
    database_monitor(const database_monitor&) = delete;
    database_monitor& operator=(const database_monitor&) = delete;

    // Probes until the shutdown, every probe_interval, the first at once or,
    // when the caller has just seen the database answer (`answered_now`),
    // one interval later: a backfill shorter than that opens no connection
    // for probes. Never throws.
    boost::asio::awaitable<void> keep_probing(bool answered_now = false);

    // Whether the last probe found the database answering (true before the first).
    bool up() const { return up_; }
    const std::string& reason() const { return reason_; }

    // Asks for a probe now and waits until one finds the database answering:
    // true then; false when `limit` passed first or the shutdown began.
    boost::asio::awaitable<bool> wait_until_answering(std::chrono::milliseconds limit);

    // Woken whenever a probe finds the database answering after it was down;
    // recoveries() counts those times.
    wakeup& recovered() { return recovered_; }
    // Connections the probes opened so far.
    std::uint64_t connections_opened() const { return probe_workers_.connections_opened(); }
    std::uint64_t recoveries() const { return recoveries_; }

private:
    boost::asio::awaitable<void> probe_once();
    void report(bool up, const std::string& reason);

    database_config config_;
    shutdown_signal& shutdown_;
    const db_workers* workers_;
    listener on_probe_;
    db_workers probe_workers_;  // one thread, one connection: the probe's own
    db_workers::session session_;
    bool up_ = true;
    std::string reason_;
    std::chrono::steady_clock::time_point down_since_{};
    std::chrono::steady_clock::time_point last_logged_{};
    std::optional<clock::time_point> last_ok_;
    std::uint64_t started_ = 0;   // probes begun
    std::uint64_t finished_ = 0;  // the number of the last probe finished
    bool asked_ = false;          // a probe was asked for since the last one began
    std::uint64_t recoveries_ = 0;
    wakeup probe_asked_;
    wakeup probed_;
    wakeup recovered_;
};

}  // namespace comeback
