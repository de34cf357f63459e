#include "support/hostile_vitec.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace comeback::test {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);
constexpr std::size_t block_size = 64 * 1024;

const std::string json_head_chunked =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

std::string chunk(std::string_view data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return std::string(size) + std::string(data) + "\r\n";
}

// The value of the Authorization header in a request head, as received.
std::string authorization_of(std::string_view head) {
    constexpr std::string_view name = "\r\nauthorization:";
    std::string lower(head);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto at = lower.find(name);
    if (at == std::string::npos) return {};
    auto start = at + name.size();
    while (start < head.size() && head[start] == ' ') ++start;
    return std::string(head.substr(start, head.find("\r\n", start) - start));
}

}  // namespace

std::vector<std::pair<std::string_view, hostile_mode>> hostile_mode_names() {
    return {
        {"endless-chunk-extension", hostile_mode::endless_chunk_extension},
        {"endless-trailer", hostile_mode::endless_trailer},
        {"endless-header", hostile_mode::endless_header},
        {"announced-2gib", hostile_mode::announced_2gib},
        {"endless-chunked-body", hostile_mode::endless_chunked_body},
        {"one-byte-per-second", hostile_mode::one_byte_per_second},
        {"echo-authorization", hostile_mode::echo_authorization},
        {"echo-authorization-text", hostile_mode::echo_authorization_text},
        {"huge-string", hostile_mode::huge_string},
        {"slow-body", hostile_mode::slow_body},
        {"malformed-status", hostile_mode::malformed_status},
        {"malformed-chunk", hostile_mode::malformed_chunk},
        {"redirect", hostile_mode::redirect},
        {"empty-body", hostile_mode::empty_body},
    };
}

hostile_mode parse_hostile_mode(std::string_view name) {
    std::string known;
    for (const auto& [spelled, mode] : hostile_mode_names()) {
        if (spelled == name) return mode;
        known += (known.empty() ? "" : ", ") + std::string(spelled);
    }
    throw std::invalid_argument("unknown mode '" + std::string(name) + "' (known: " + known + ")");
}

struct hostile_vitec::impl : std::enable_shared_from_this<impl> {
    explicit impl(hostile_options options) : options(options) {}

    hostile_options options;
    net::io_context io{1};
    tcp::acceptor acceptor{io};
    std::thread thread;
    std::atomic<std::uint64_t> request_count{0};
    mutable std::mutex mutex;
    std::string authorization;  // mutex

    net::awaitable<void> accept_loop() {
        for (;;) {
            auto [error, socket] = co_await acceptor.async_accept(tuple_awaitable);
            if (error) co_return;
            net::co_spawn(io, serve(std::move(socket)), net::detached);
        }
    }

    // false once the peer is gone.
    static net::awaitable<bool> send(tcp::socket& socket, std::string_view data) {
        auto [error, n] = co_await net::async_write(socket, net::buffer(data), tuple_awaitable);
        co_return !error;
    }

    static net::awaitable<void> send_forever(tcp::socket& socket, std::string_view block) {
        // Not `while (co_await ...)`: GCC 12 miscompiles a co_await in a loop condition.
        for (;;) {
            const bool open = co_await send(socket, block);
            if (!open) break;
        }
    }

    // Sends `head` one byte a second, then `then` once a second, forever.
    net::awaitable<void> trickle(tcp::socket& socket, std::string_view head, std::string_view then) {
        net::steady_timer timer(io);
        for (std::size_t i = 0;; ++i) {
            const std::string_view piece = i < head.size() ? head.substr(i, 1) : then;
            if (!co_await send(socket, piece)) break;
            timer.expires_after(std::chrono::seconds(1));
            co_await timer.async_wait(tuple_awaitable);
        }
    }

    // Keeps the connection open, sending nothing, until the peer closes it.
    static net::awaitable<void> hold(tcp::socket& socket) {
        char byte;
        for (;;) {
            auto [error, n] = co_await socket.async_read_some(net::buffer(&byte, 1), tuple_awaitable);
            if (error) break;
        }
    }

    net::awaitable<void> serve(tcp::socket socket) {
        std::string head;
        auto [error, n] = co_await net::async_read_until(socket, net::dynamic_buffer(head, block_size),
                                                         "\r\n\r\n", tuple_awaitable);
        if (error) co_return;
        const std::string received = authorization_of(std::string_view(head).substr(0, n));
        {
            std::lock_guard lock(mutex);
            authorization = received;
        }
        ++request_count;

        const std::string filler(block_size, 'a');
        switch (options.mode) {
        case hostile_mode::endless_chunk_extension:
            if (co_await send(socket, json_head_chunked + "1;x=")) co_await send_forever(socket, filler);
            break;
        case hostile_mode::endless_trailer:
            if (co_await send(socket, json_head_chunked + chunk("[") + chunk("]") + "0\r\nX-Trailer: "))
                co_await send_forever(socket, filler);
            break;
        case hostile_mode::endless_header:
            if (co_await send(socket, "HTTP/1.1 200 OK\r\nX-Filler: ")) co_await send_forever(socket, filler);
            break;
        case hostile_mode::announced_2gib:
            if (co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                      "Content-Length: 2147483648\r\n\r\n["))
                co_await send_forever(socket, std::string(block_size, ' '));
            break;
        case hostile_mode::endless_chunked_body:
            if (co_await send(socket, json_head_chunked + chunk("[")))
                co_await send_forever(socket, chunk(std::string(block_size, ' ')));
            break;
        case hostile_mode::one_byte_per_second:
            co_await trickle(socket, "HTTP/1.1 200 OK\r\nX-Slow: ", "a");
            break;
        case hostile_mode::slow_body:
            // Each byte its own chunk, so every one reaches the client's parser.
            if (co_await send(socket, json_head_chunked + chunk("["))) co_await trickle(socket, "", chunk(" "));
            break;
        case hostile_mode::malformed_status:
            co_await send(socket, "HTTP/1.1 2x0 Whatever\r\nContent-Length: 2\r\n\r\n[]");
            break;
        case hostile_mode::malformed_chunk:
            co_await send(socket, json_head_chunked + "zz\r\n[]\r\n0\r\n\r\n");
            break;
        case hostile_mode::redirect:
            co_await send(socket, "HTTP/1.1 302 Found\r\nLocation: http://198.51.100.7/Report/Task/M1/Comeback\r\n"
                                  "Content-Length: 0\r\n\r\n");
            break;
        case hostile_mode::empty_body:
            co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 0\r\n\r\n");
            // Kept open: the client must not wait for more than the length announced.
            co_await hold(socket);
            break;
        case hostile_mode::echo_authorization: {
            const std::string body = "{\"message\":\"" + std::string(options.padding, 'x') + " received " +
                                     received + " (debug echo)\"}";
            co_await send(socket, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                                  "Connection: close\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body);
            break;
        }
        case hostile_mode::echo_authorization_text: {
            const std::string body = std::string(options.padding, 'x') + "Authorization: " + received +
                                     "\r\n" + std::string(block_size, 'y');
            co_await send(socket, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                  "Connection: close\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body);
            break;
        }
        case hostile_mode::huge_string: {
            if (!co_await send(socket, json_head_chunked +
                                           chunk("[{\"id\":\"H1\",\"contact\":{\"id\":\"C1\",\"name\":\"")))
                break;
            const std::string piece = chunk(filler);
            std::uint64_t left = options.string_bytes;
            bool open = true;
            while (open && left >= block_size) {
                open = co_await send(socket, piece);
                left -= block_size;
            }
            if (open && left > 0) open = co_await send(socket, chunk(std::string(left, 'a')));
            if (open) co_await send(socket, chunk("\"}}]") + "0\r\n\r\n");
            break;
        }
        }
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
    }
};

hostile_vitec::hostile_vitec(hostile_options options, unsigned short port)
    : impl_(std::make_shared<impl>(options)) {
    tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(endpoint);
    impl_->acceptor.listen();
    net::co_spawn(impl_->io, impl_->accept_loop(), net::detached);
    impl_->thread = std::thread([state = impl_] { state->io.run(); });
}

hostile_vitec::~hostile_vitec() {
    impl_->io.stop();
    impl_->thread.join();
}

unsigned short hostile_vitec::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string hostile_vitec::url() const { return "http://127.0.0.1:" + std::to_string(port()); }

std::uint64_t hostile_vitec::requests() const { return impl_->request_count.load(); }

std::string hostile_vitec::last_authorization() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->authorization;
}

}  // namespace comeback::test
