#include "sync/shutdown.hpp"

#include "observability/logging.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

namespace comeback {

namespace asio = boost::asio;

void wakeup::wake() {
    for (void* sleeper : sleepers_) static_cast<asio::steady_timer*>(sleeper)->cancel();
}

asio::awaitable<bool> shutdown_signal::sleep(std::chrono::milliseconds duration, wakeup* early) {
    if (triggered_) co_return false;
    asio::steady_timer timer(executor_, duration);
    // Unregistered however the wait ends, even when the frame is destroyed.
    struct registration {
        std::set<void*>* set;
        void* timer;
        ~registration() {
            if (set) set->erase(timer);
        }
    } registered{&sleepers_, &timer}, woken_early{early ? &early->sleepers_ : nullptr, &timer};
    sleepers_.insert(&timer);
    if (early) early->sleepers_.insert(&timer);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return !triggered_;
}

void shutdown_signal::trigger() {
    triggered_ = true;
    for (void* sleeper : sleepers_) static_cast<asio::steady_timer*>(sleeper)->cancel();
}

struct signal_stop::impl {
    impl(asio::io_context& io, shutdown_signal& shutdown, handlers on)
        : io(io), shutdown(shutdown), on(std::move(on)), signals(io, SIGINT, SIGTERM), grace_timer(io) {
        if (this->on.hangup) signals.add(SIGHUP);
    }

    asio::awaitable<void> listen() {
        for (;;) {
            auto [error, signal] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
            if (error) co_return;  // finished()
            if (signal == SIGHUP) {
                on.hangup();
                continue;
            }
            begin(signal == SIGTERM ? "SIGTERM" : "SIGINT");
        }
    }

    void begin(std::string_view signal) {
        if (stopping) return;
        stopping = true;
        grace = on.grace();
        shutdown.trigger();
        grace_timer.expires_after(grace);
        grace_timer.async_wait([this](boost::system::error_code error) {
            if (error) return;  // everything finished in time
            abandoned = true;
            io.stop();
        });
        on.stopping(signal);
    }

    asio::io_context& io;
    shutdown_signal& shutdown;
    handlers on;
    asio::signal_set signals;
    asio::steady_timer grace_timer;
    std::chrono::seconds grace{0};
    bool stopping = false;
    bool abandoned = false;
};

signal_stop::signal_stop(asio::io_context& io, shutdown_signal& shutdown, handlers on)
    : impl_(std::make_unique<impl>(io, shutdown, std::move(on))) {}

signal_stop::~signal_stop() = default;

void signal_stop::start() { asio::co_spawn(impl_->io, impl_->listen(), asio::detached); }

void signal_stop::finished() {
    impl_->grace_timer.cancel();
    impl_->signals.cancel();
}

bool signal_stop::abandoned() const { return impl_->abandoned; }

void signal_stop::leave_abandoned(int exit_code) const {
    log_event(spdlog::level::warn, "shutdown.abandoned", {{"grace_s", impl_->grace.count()}});
    spdlog::shutdown();
    std::_Exit(exit_code);
}

}  // namespace comeback
