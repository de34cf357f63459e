#pragma once
// One switch for "stop starting work": every wait of the scheduler goes
// through sleep(), so a SIGTERM wakes all of them at once instead of leaving
// them to run out their timers. Used from the io_context thread only.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <set>


namespace comeback {

class shutdown_signal {
public:
    explicit shutdown_signal(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

    // Waits for `duration`. Returns false at once, or as soon as trigger() is
    // called, when shutting down.
    boost::asio::awaitable<bool> sleep(std::chrono::milliseconds duration);

    // Wakes every sleeper; later sleeps return false immediately. Idempotent.
    void trigger();
    bool triggered() const { return triggered_; }

private:
    boost::asio::any_io_executor executor_;
    bool triggered_ = false;
    std::set<void*> sleepers_;  // the steady_timers currently waited on
};

}  // namespace comeback
