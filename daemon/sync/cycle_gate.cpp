#include "sync/cycle_gate.hpp"

#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <utility>

namespace comeback {

namespace asio = boost::asio;

std::size_t cycle_capacity(const config& cfg) {
    const std::size_t slots = cfg.database.pool_size + cfg.vitec.max_concurrent_requests;
    return slots + slots / 4;
}

// A place is a message in the channel: entering sends one (waiting while the
// channel is full), leaving takes one out, which lets the first waiter in.
struct cycle_gate::state {
    state(asio::any_io_executor executor, std::size_t capacity)
        : places(executor, std::max<std::size_t>(capacity, 1)), capacity(std::max<std::size_t>(capacity, 1)) {}

    asio::experimental::channel<void(boost::system::error_code)> places;
    std::size_t capacity;
    std::size_t inside = 0;
    std::size_t peak = 0;

    asio::awaitable<void> take() {
        co_await places.async_send(boost::system::error_code{}, asio::use_awaitable);
        ++inside;
        peak = std::max(peak, inside);
    }
    void give_back() {
        --inside;
        places.try_receive([](boost::system::error_code) {});
    }
};

cycle_gate::cycle_gate(asio::any_io_executor executor, std::size_t capacity)
    : state_(std::make_shared<state>(std::move(executor), capacity)) {}

cycle_gate::~cycle_gate() = default;

asio::awaitable<cycle_gate::pass> cycle_gate::enter() {
    co_await state_->take();
    pass taken;
    taken.state_ = state_;
    taken.inside_ = true;
    co_return taken;
}

std::size_t cycle_gate::capacity() const { return state_->capacity; }
std::size_t cycle_gate::inside() const { return state_->inside; }
std::size_t cycle_gate::peak() const { return state_->peak; }

cycle_gate::pass::pass(pass&& other) noexcept
    : state_(std::move(other.state_)), inside_(std::exchange(other.inside_, false)) {}

cycle_gate::pass& cycle_gate::pass::operator=(pass&& other) noexcept {
    if (this != &other) {
        pass dropped(std::move(*this));
        state_ = std::move(other.state_);
        inside_ = std::exchange(other.inside_, false);
    }
    return *this;
}

cycle_gate::pass::~pass() { step_out(); }

void cycle_gate::pass::step_out() {
    if (!state_ || !inside_) return;
    inside_ = false;
    state_->give_back();
}

asio::awaitable<void> cycle_gate::pass::step_in() {
    if (!state_ || inside_) co_return;
    co_await state_->take();
    inside_ = true;
}

}  // namespace comeback
