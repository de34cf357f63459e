#include "fetch/request_limiter.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>

namespace comeback {

namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

struct waiter {
    explicit waiter(const net::any_io_executor& executor) : wakeup(executor, clock_type::time_point::max()) {}
    net::steady_timer wakeup;  // cancelled to wake the waiting coroutine
    bool granted = false;
};

}  // namespace

struct request_limiter::state : std::enable_shared_from_this<state> {
    state(net::any_io_executor executor, unsigned max_concurrent, double per_second,
          std::chrono::duration<double> catch_up_window)
        : executor(executor), max_concurrent(std::max(1u, max_concurrent)), per_second(per_second),
          catch_up(std::max(0.0, per_second * catch_up_window.count())), refill_timer(executor) {}

    net::any_io_executor executor;
    unsigned max_concurrent;
    double per_second;
    double catch_up;  // starts' worth of lateness made up, beyond the one token
    unsigned in_flight = 0;
    double tokens = 1;
    // Whether a request waited for a token since the last refill: only then
    // does the time since count beyond one token (a late timer), never an
    // idle spell (a burst).
    bool waited_for_token = false;
    clock_type::time_point refilled_at = clock_type::now();
    net::steady_timer refill_timer;
    bool refill_pending = false;
    bool closed = false;
    std::shared_ptr<wait_stats> stats;  // null: not counted
    std::map<std::string, std::deque<std::shared_ptr<waiter>>> queues;
    std::deque<std::string> turn_order;  // keys with waiters, next turn first

    void refill() {
        if (per_second <= 0) return;
        auto now = clock_type::now();
        std::chrono::duration<double> elapsed = now - refilled_at;
        tokens = std::min(waited_for_token ? 1.0 + catch_up : 1.0, tokens + elapsed.count() * per_second);
        refilled_at = now;
    }

    void enqueue(const std::string& key, std::shared_ptr<waiter> w) {
        auto& queue = queues[key];
        if (queue.empty()) turn_order.push_back(key);
        queue.push_back(std::move(w));
    }

    void pump() {
        refill();
        while (!closed && in_flight < max_concurrent && !turn_order.empty()) {
            if (per_second > 0 && tokens < 1.0) {
                waited_for_token = true;
                schedule_refill();
                return;
            }
            auto key = std::move(turn_order.front());
            turn_order.pop_front();
            auto& queue = queues[key];
            auto next = std::move(queue.front());
            queue.pop_front();
            if (queue.empty())
                queues.erase(key);
            else
                turn_order.push_back(std::move(key));
            if (per_second > 0) tokens -= 1.0;
            ++in_flight;
            next->granted = true;
            next->wakeup.cancel();
        }
        waited_for_token = false;  // none waits, or they wait for a slot: no credit
    }

    void schedule_refill() {
        if (refill_pending) return;
        refill_pending = true;
        auto wait = std::chrono::duration<double>((1.0 - tokens) / per_second);
        refill_timer.expires_after(std::chrono::duration_cast<clock_type::duration>(wait) +
                                   std::chrono::microseconds(1));
        refill_timer.async_wait([weak = weak_from_this()](boost::system::error_code) {
            if (auto self = weak.lock()) {
                self->refill_pending = false;
                self->pump();
            }
        });
    }

    void release() {
        --in_flight;
        pump();
    }

    void close() {
        closed = true;
        refill_timer.cancel();
        for (auto& [key, queue] : queues)
            for (auto& w : queue) w->wakeup.cancel();
        queues.clear();
        turn_order.clear();
    }
};

request_limiter::permit& request_limiter::permit::operator=(permit&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = std::move(other.owner_);
    }
    return *this;
}

request_limiter::permit::~permit() { release(); }

void request_limiter::permit::release() {
    if (auto owner = std::move(owner_)) owner->release();
}

request_limiter::request_limiter(net::any_io_executor executor, unsigned max_concurrent,
                                 double per_second, std::chrono::milliseconds catch_up)
    : state_(std::make_shared<state>(executor, max_concurrent, per_second, catch_up)) {}

request_limiter::~request_limiter() { state_->close(); }

void request_limiter::count_into(std::shared_ptr<wait_stats> stats) { state_->stats = std::move(stats); }

net::awaitable<request_limiter::permit> request_limiter::acquire(std::string key) {
    auto owner = state_;
    auto w = std::make_shared<waiter>(owner->executor);
    owner->enqueue(key, w);
    owner->pump();
    if (!w->granted) {
        // Counted while it waits, however the wait ends (the frame may be
        // destroyed while suspended, at shutdown).
        counted_wait counted(owner->stats);
        co_await w->wakeup.async_wait(net::as_tuple(net::use_awaitable));
    }
    if (!w->granted)
        throw boost::system::system_error(net::error::operation_aborted,
                                          "request limiter closed while waiting");
    if (owner->stats) ++owner->stats->started;
    co_return permit(owner);
}

unsigned request_limiter::in_flight() const { return state_->in_flight; }

}  // namespace comeback
