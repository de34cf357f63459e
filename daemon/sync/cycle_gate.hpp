#pragma once
// How many customers of `run` are inside a cycle at once. A customer in a
// cycle holds the coroutine frames of its planning and of the window it works
// (a few KB); with thousands of customers all due at start-up, every one of
// them would sit in a cycle waiting for a database session or a request slot,
// and memory would grow with the customers. At most cycle_capacity() are
// inside; the others wait in customer_scheduler's queue, in the order they
// fell due, holding no coroutine. A window holds a database session for its
// ticket, gives it back while its request is in flight, and holds one again
// from its response's first bytes to its commit (window_job.cpp, load_side):
// a gate as wide as the request slots and the sessions together keeps both
// busy, one set of windows waiting for Vitec while another loads, and a
// quarter more keeps a line waiting at the request limiter, so a start it
// offers is taken at once while the customers inside are between windows
// (reading their ledger, or handing a response to a database thread).
//
// A customer waiting out a retry's back-off steps out and lets another in
// (window_context::pass), so customers whose windows fail cannot keep healthy
// ones waiting.
//
// Used from the io_context thread only.

#include "config/config.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <memory>

namespace comeback {

// The rule: database.pool_size plus max_concurrent_requests, and a quarter
// of that more.
std::size_t cycle_capacity(const config& cfg);

class cycle_gate {
    struct state;

public:
    cycle_gate(boost::asio::any_io_executor executor, std::size_t capacity);
    ~cycle_gate();
    cycle_gate(const cycle_gate&) = delete;
    cycle_gate& operator=(const cycle_gate&) = delete;

    // A place inside, given back when destroyed. Move-only.
    class pass {
    public:
        pass() = default;
        pass(pass&& other) noexcept;
        pass& operator=(pass&& other) noexcept;
        ~pass();

        // Gives the place back for a wait that needs none; step_in() takes
        // one again (waiting in line like a customer at the gate).
        void step_out();
        boost::asio::awaitable<void> step_in();
        bool inside() const { return inside_; }

    private:
        friend class cycle_gate;
        std::shared_ptr<state> state_;
        bool inside_ = false;
    };

    // Waits for a place.
    boost::asio::awaitable<pass> enter();

    std::size_t capacity() const;
    std::size_t inside() const;
    std::size_t peak() const;  // the most inside at once so far

private:
    std::shared_ptr<state> state_;
};

}  // namespace comeback
