#include "observability/metrics_server.hpp"

#include "observability/logging.hpp"
#include "observability/metrics.hpp"
#include "observability/metrics_http.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <list>
#include <optional>
#include <system_error>

namespace comeback {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class session;

// The server's state, shared by the server and its open connections, so a
// connection outlives neither.
struct server_state : std::enable_shared_from_this<server_state> {
    server_state(asio::any_io_executor executor, const metrics_registry& registry,
                 status_page_source status_page)
        : strand(asio::make_strand(executor)), acceptor(strand), registry(registry),
          status_page(std::move(status_page)) {}

    void accept();
    void close_all();

    asio::strand<asio::any_io_executor> strand;
    tcp::acceptor acceptor;
    const metrics_registry& registry;
    status_page_source status_page;
    std::uint16_t port = 0;
    std::atomic<bool> stopped{false};
    // Open connections, so stop() can close them; touched only on the strand.
    std::list<std::weak_ptr<session>> sessions;
};

// Scrapers are quick; a stuck client must not hold a connection forever.
constexpr auto io_timeout = std::chrono::seconds(10);

class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket socket, std::shared_ptr<server_state> server)
        : stream_(std::move(socket)), server_(std::move(server)) {}

    void start() { read(); }
    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

private:
    void read() {
        parser_.emplace();
        metrics_http::apply_limits(*parser_);
        stream_.expires_after(io_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code error, std::size_t) {
                             self->on_read(error);
                         });
    }

    void on_read(beast::error_code error) {
        if (error || server_->stopped) return;  // closed, timed out or stopping: drop it
        response_ = metrics_http::answer(parser_->get(), server_->registry, server_->status_page);
        stream_.expires_after(io_timeout);
        http::async_write(stream_, response_,
                          [self = shared_from_this()](beast::error_code error, std::size_t) {
                              self->on_write(error);
                          });
    }

    void on_write(beast::error_code error) {
        if (error) return;
        if (response_.keep_alive()) {
            read();
        } else {
            beast::error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        }
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<metrics_http::request_parser> parser_;  // a new one for each request
    metrics_http::response response_;
    std::shared_ptr<server_state> server_;
};

void server_state::accept() {
    // Every connection shares the server's strand: scrapes are rare and small,
    // and stop() can then close sockets without racing their handlers.
    acceptor.async_accept(strand,
        [self = shared_from_this()](beast::error_code error, tcp::socket socket) {
            if (self->stopped || error == asio::error::operation_aborted) return;
            if (!error) {
                auto connection = std::make_shared<session>(std::move(socket), self);
                std::erase_if(self->sessions, [](const auto& s) { return s.expired(); });
                self->sessions.push_back(connection);
                connection->start();
            } else {
                log_event(spdlog::level::warn, "metrics.accept_failed",
                          {{"error", error.message()}});
            }
            self->accept();
        });
}

void server_state::close_all() {
    beast::error_code ignored;
    acceptor.close(ignored);
    for (auto& weak : sessions) {
        if (auto connection = weak.lock()) connection->close();
    }
    sessions.clear();
}

}  // namespace

struct metrics_server::impl : server_state {
    using server_state::server_state;
};

metrics_server::metrics_server(asio::any_io_executor executor, const listen_address& listen,
                               const metrics_registry& registry, status_page_source status_page)
    : impl_(std::make_shared<impl>(std::move(executor), registry, std::move(status_page))) {
    auto fail = [&](const beast::error_code& error, std::string_view what) {
        throw std::system_error(error, "metrics.listen " + to_string(listen) + ": " +
                                           std::string(what));
    };
    beast::error_code error;
    tcp::resolver resolver(impl_->strand);
    const auto endpoints = resolver.resolve(listen.host, std::to_string(listen.port),
                                            tcp::resolver::passive | tcp::resolver::numeric_service,
                                            error);
    if (error) fail(error, "cannot resolve");
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    auto& acceptor = impl_->acceptor;
    acceptor.open(endpoint.protocol(), error);
    if (error) fail(error, "cannot open a socket");
    acceptor.set_option(asio::socket_base::reuse_address(true), error);
    acceptor.bind(endpoint, error);
    if (error) fail(error, "cannot bind");
    acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error) fail(error, "cannot listen");
    impl_->port = acceptor.local_endpoint().port();
    // The acceptor is only touched on the strand from here on.
    asio::post(impl_->strand, [self = impl_] { self->accept(); });
}

metrics_server::~metrics_server() { stop(); }

std::uint16_t metrics_server::port() const { return impl_->port; }

void metrics_server::stop() {
    if (impl_->stopped.exchange(true)) return;
    asio::post(impl_->strand, [self = impl_] { self->close_all(); });
}

}  // namespace comeback
