#pragma once
// Stopping, written once for run and backfill.
//
// shutdown_signal is the one switch for "stop starting work": every wait of
// the scheduler goes through sleep(), so a SIGTERM wakes all of them at once
// instead of leaving them to run out their timers.
//
// signal_stop turns SIGTERM and SIGINT into that switch plus a grace period:
// windows in flight get `grace` to commit, then the io_context is stopped and
// the command leaves with leave_abandoned(). Both are used from the
// io_context thread only.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace comeback {

// Sleepers woken together by something other than the shutdown: the
// database answering again, a probe asked for. Used from the io_context
// thread only.
class wakeup {
public:
    // Ends every sleep currently waiting on this wakeup.
    void wake();

private:
    friend class shutdown_signal;
    std::set<void*> sleepers_;  // the steady_timers currently waited on
};

class shutdown_signal {
public:
    explicit shutdown_signal(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

    // Waits for `duration`, or less when `early` (if given) is woken first.
    // Returns false at once, or as soon as trigger() is called, when
    // shutting down.
    boost::asio::awaitable<bool> sleep(std::chrono::milliseconds duration, wakeup* early = nullptr);

    // Wakes every sleeper; later sleeps return false immediately. Idempotent.
    void trigger();
    bool triggered() const { return triggered_; }

private:
    boost::asio::any_io_executor executor_;
    bool triggered_ = false;
    std::set<void*> sleepers_;  // the steady_timers currently waited on
};

class signal_stop {
public:
    struct handlers {
        // The configured grace period, read when the signal arrives (run's
        // configuration may have been reloaded since the start).
        std::function<std::chrono::seconds()> grace;
        // Told after the first SIGTERM or SIGINT has triggered the shutdown,
        // with "SIGTERM" or "SIGINT"; later ones are ignored.
        std::function<void(std::string_view signal)> stopping;
        // When set, SIGHUP is caught too and handed here (run's reload).
        std::function<void()> hangup;
    };

    signal_stop(boost::asio::io_context& io, shutdown_signal& shutdown, handlers on);
    ~signal_stop();
    signal_stop(const signal_stop&) = delete;
    signal_stop& operator=(const signal_stop&) = delete;

    // Starts listening for the signals.
    void start();
    // The work ended within the grace period: stop listening, cancel the timer.
    void finished();
    // The grace period ran out and the io_context was stopped.
    bool abandoned() const;

    // Leaves the process at once with `exit_code` after logging
    // shutdown.abandoned: destructors of suspended work do not run. Open
    // transactions end with their connections and PostgreSQL rolls them back,
    // so nothing partial is committed.
    [[noreturn]] void leave_abandoned(int exit_code) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace comeback
