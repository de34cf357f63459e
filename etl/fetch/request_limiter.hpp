#pragma once
// Politeness towards Vitec across all customers: at most `max_concurrent`
// requests in flight and at most `per_second` started per second (a token
// bucket holding one token, so starts are evenly spaced and never burst).
// Waiting requests are served round-robin by key (the customer id), so one
// customer with many windows cannot starve the others.
//
// Used from one thread at a time (see vitec_client.hpp).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

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

    // max_concurrent 0 is read as 1; per_second <= 0 means no rate cap.
    request_limiter(boost::asio::any_io_executor executor, unsigned max_concurrent,
                    double per_second);
    ~request_limiter();

    // Waits until this key's turn comes and a slot and a token are free.
    // Throws boost::system::system_error (operation_aborted) if the limiter is
    // destroyed while waiting.
    boost::asio::awaitable<permit> acquire(std::string key);

    unsigned in_flight() const;

private:
    std::shared_ptr<state> state_;
};

}  // namespace comeback
