#pragma once
// Politeness towards Vitec across all customers: at most `max_concurrent`
// requests in flight and at most `per_second` started per second, evenly
// spaced: a token bucket holding one token, refilled by a timer. A timer fires
// late on a busy machine, and a bucket of one token would lose the time it
// was late by at every start (at 500 a second, a timer half a millisecond
// late on average kept starts at 400 a second). So while requests wait for a
// token, up to 10 ms of lateness is made up: the bucket may hold that many
// starts' worth more (5 at 500 a second, a tenth of one at 10), which come as
// soon as the timer fires. Time in which no request waited for a token earns
// one token at most: starts never burst after a quiet spell.
// Waiting requests are served round-robin by key (the customer id), so one
// customer with many windows cannot starve the others.
//
// Used from one thread at a time (see vitec_client.hpp).

#include "model/wait_stats.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace comeback {

class request_limiter {
    struct state;

public:
    // A granted slot; releasing it (destruction) lets the next request start.
    class permit {
    public:
        permit() = default;
        explicit permit(std::shared_ptr<state> owner) : owner_(std::move(owner)) {}
        permit(permit&& other) noexcept = default;
        permit& operator=(permit&& other) noexcept;
        ~permit();

    private:
        void release();
        std::shared_ptr<state> owner_;
    };

    // How much lateness is made up (see above).
    static constexpr std::chrono::milliseconds default_catch_up{10};

    // max_concurrent 0 is read as 1; per_second <= 0 means no rate cap.
    // `catch_up`: the daemon keeps the default, tests widen it to see it at work.
    request_limiter(boost::asio::any_io_executor executor, unsigned max_concurrent,
                    double per_second, std::chrono::milliseconds catch_up = default_catch_up);
    ~request_limiter();

    // Counts the requests waiting for a start and their waits into `stats`
    // (null: nowhere) from now on.
    void count_into(std::shared_ptr<wait_stats> stats);

    // Waits until this key's turn comes and a slot and a token are free.
    // Throws boost::system::system_error (operation_aborted) if the limiter is
    // destroyed while waiting.
    boost::asio::awaitable<permit> acquire(std::string key);

    unsigned in_flight() const;

private:
    std::shared_ptr<state> state_;
};

}  // namespace comeback
