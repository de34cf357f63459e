#include "sync/shutdown.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace comeback {

namespace asio = boost::asio;

asio::awaitable<bool> shutdown_signal::sleep(std::chrono::milliseconds duration) {
    if (triggered_) co_return false;
    asio::steady_timer timer(executor_, duration);
    // Unregistered however the wait ends, even when the frame is destroyed.
    struct registration {
        std::set<void*>& set;
        void* timer;
        ~registration() { set.erase(timer); }
    } registered{sleepers_, &timer};
    sleepers_.insert(&timer);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return !triggered_;
}

void shutdown_signal::trigger() {
    triggered_ = true;
    for (void* sleeper : sleepers_) static_cast<asio::steady_timer*>(sleeper)->cancel();
}

}  // namespace comeback
