#include "support/tcp_proxy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace comeback::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct tcp_proxy::impl : std::enable_shared_from_this<impl> {
    struct link {
        explicit link(asio::io_context& io) : client(io), server(io) {}
        tcp::socket client;
        tcp::socket server;
    };

    impl(std::string host, std::uint16_t port, std::uint16_t listen_port)
        : upstream_host(std::move(host)),
          upstream_port(port),
          acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), listen_port)),
          gate(io, asio::steady_timer::time_point::max()) {}

    asio::io_context io;
    std::string upstream_host;
    std::uint16_t upstream_port;
    tcp::acceptor acceptor;
    asio::steady_timer gate;  // waited on while blackholed; cancelled by heal()
    std::atomic<bool> holding{false};
    std::string hold_pattern;  // empty: none; touched on the proxy's thread only
    bool deliver_pattern = false;
    std::function<void(const std::string&)> held_listener;
    std::atomic<std::size_t> open{0};
    std::set<std::shared_ptr<link>> links;
    std::chrono::milliseconds delay{0};  // set before the first connection
    std::thread thread;

    // One direction of a delayed link: what was read, each piece due `delay`
    // after it arrived, written in order while later pieces are read.
    struct delayed {
        explicit delayed(asio::io_context& io) : wake(io, asio::steady_timer::time_point::max()) {}
        std::deque<std::pair<asio::steady_timer::time_point, std::string>> pieces;
        asio::steady_timer wake;  // cancelled when a piece arrives or reading ends
        bool ended = false;
    };

    // Closes both sides of `l` (whichever are open) and forgets it.
    void end(const std::shared_ptr<link>& l) {
        boost::system::error_code ignored;
        l->client.close(ignored);
        l->server.close(ignored);
        if (links.erase(l) > 0) --open;
    }

    // Returns once traffic may flow.
    asio::awaitable<void> pass() {
        while (holding) co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
    }

    // Forwards what `from` sends to `to`, or, with a delay, hands it to
    // deliver_later through `later`.
    asio::awaitable<void> pump(std::shared_ptr<link> l, tcp::socket& from, tcp::socket& to, bool from_client,
                               std::shared_ptr<delayed> later) {
        std::array<char, 16384> buffer;
        for (;;) {
            co_await pass();
            auto [error, n] = co_await from.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
            if (error) break;
            // libpq sends COMMIT and COPY as simple queries: 'Q', length, text.
            bool held_here = false;
            if (from_client && !hold_pattern.empty() &&
                std::string_view(buffer.data(), n).find(hold_pattern) != std::string_view::npos) {
                const std::string pattern = std::exchange(hold_pattern, std::string());
                holding = true;
                held_here = deliver_pattern;
                if (held_listener) held_listener(pattern);
            }
            if (later) {
                later->pieces.emplace_back(asio::steady_timer::clock_type::now() + delay,
                                           std::string(buffer.data(), n));
                later->wake.cancel();
                continue;
            }
            if (!held_here) co_await pass();
            auto [write_error, written] =
                co_await asio::async_write(to, asio::buffer(buffer.data(), n), asio::as_tuple(asio::use_awaitable));
            if (write_error) break;
        }
        if (later) {
            later->ended = true;  // the writer closes both once it has written the rest
            later->wake.cancel();
            co_return;
        }
        end(l);
    }

    // Writes what `pump` read for `to`, each piece once it is due.
    asio::awaitable<void> deliver_later(std::shared_ptr<link> l, std::shared_ptr<delayed> later, tcp::socket& to) {
        for (;;) {
            if (later->pieces.empty()) {
                if (later->ended) break;
                later->wake.expires_at(asio::steady_timer::time_point::max());
                co_await later->wake.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            asio::steady_timer due(io, later->pieces.front().first);
            co_await due.async_wait(asio::as_tuple(asio::use_awaitable));
            co_await pass();
            const std::string piece = std::move(later->pieces.front().second);
            later->pieces.pop_front();
            auto [write_error, written] =
                co_await asio::async_write(to, asio::buffer(piece), asio::as_tuple(asio::use_awaitable));
            if (write_error) break;
        }
        end(l);
    }

    asio::awaitable<void> serve(std::shared_ptr<link> l) {
        co_await pass();
        tcp::resolver resolver(io);
        auto [resolve_error, endpoints] = co_await resolver.async_resolve(
            upstream_host, std::to_string(upstream_port), asio::as_tuple(asio::use_awaitable));
        if (!resolve_error) {
            auto [connect_error, endpoint] =
                co_await asio::async_connect(l->server, endpoints, asio::as_tuple(asio::use_awaitable));
            if (!connect_error) {
                for (const bool from_client : {true, false}) {
                    tcp::socket& from = from_client ? l->client : l->server;
                    tcp::socket& to = from_client ? l->server : l->client;
                    std::shared_ptr<delayed> later;
                    if (delay.count() > 0) {
                        later = std::make_shared<delayed>(io);
                        asio::co_spawn(io, deliver_later(l, later, to), asio::detached);
                    }
                    asio::co_spawn(io, pump(l, from, to, from_client, later), asio::detached);
                }
                co_return;
            }
        }
        end(l);
    }

    asio::awaitable<void> accept() {
        for (;;) {
            auto l = std::make_shared<link>(io);
            auto [error] = co_await acceptor.async_accept(l->client, asio::as_tuple(asio::use_awaitable));
            if (error) co_return;
            links.insert(l);
            ++open;
            asio::co_spawn(io, serve(l), asio::detached);
        }
    }
};

tcp_proxy::tcp_proxy(std::string upstream_host, std::uint16_t upstream_port, std::uint16_t listen_port,
                     std::chrono::milliseconds delay)
    : impl_(std::make_shared<impl>(std::move(upstream_host), upstream_port, listen_port)) {
    impl_->delay = delay;
    asio::co_spawn(impl_->io, impl_->accept(), asio::detached);
    impl_->thread = std::thread([state = impl_] { state->io.run(); });
}

tcp_proxy::~tcp_proxy() {
    impl_->io.stop();
    impl_->thread.join();
}

std::uint16_t tcp_proxy::port() const { return impl_->acceptor.local_endpoint().port(); }

void tcp_proxy::blackhole() {
    asio::post(impl_->io, [state = impl_] {
        state->holding = true;
        state->gate.expires_at(asio::steady_timer::time_point::max());
    });
}

void tcp_proxy::blackhole_at(std::string pattern, bool deliver) {
    asio::post(impl_->io, [state = impl_, pattern = std::move(pattern), deliver] {
        state->gate.expires_at(asio::steady_timer::time_point::max());
        state->hold_pattern = pattern;
        state->deliver_pattern = deliver;
    });
}

void tcp_proxy::on_held(std::function<void(const std::string&)> listener) {
    asio::post(impl_->io, [state = impl_, listener = std::move(listener)] { state->held_listener = listener; });
}

void tcp_proxy::heal() {
    asio::post(impl_->io, [state = impl_] {
        state->holding = false;
        state->hold_pattern.clear();
        state->gate.cancel();
    });
}

void tcp_proxy::reset() {
    asio::post(impl_->io, [state = impl_] {
        for (const auto& l : state->links) {
            boost::system::error_code ignored;
            l->client.close(ignored);
            l->server.close(ignored);
        }
    });
}

bool tcp_proxy::blackholed() const { return impl_->holding; }

std::size_t tcp_proxy::connections() const { return impl_->open; }

}  // namespace comeback::test
