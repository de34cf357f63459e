#include "observability/metrics_server.hpp"

#include "config/config.hpp"
#include "observability/logging.hpp"
#include "observability/metrics.hpp"
#include "observability/metrics_http.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <sys/resource.h>

#include <array>
#include <atomic>
#include <chrono>
#include <list>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace comeback {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// After a failed accept the next waits this long, doubling up to the maximum,
// so running out of file descriptors does not turn into a busy loop.
constexpr auto first_accept_delay = 100ms;
constexpr auto max_accept_delay = 1000ms;
// Repeated trouble (a flood) is logged at most once per period.
constexpr auto log_period = 10s;
// After a refusal the client may still be sending a body the server will not
// read; closing with unread bytes would reset the connection and could destroy
// the answer before the client reads it. So the server stops sending, and reads
// and drops what still comes, up to these bounds, before it closes.
constexpr auto linger_time = 1000ms;
constexpr std::size_t linger_bytes = 64 * 1024;
// The most the answers being sent may hold of their own (a /metrics render is
// shared, not theirs): a status page of 50 customers with full strips is
// about 3 MB, and clients that ask for pages and never read would otherwise
// hold one each, max_connections of them.
constexpr std::size_t answer_budget = 16 * 1024 * 1024;
// A connection this new that has not begun a request is not yet taken for
// idle while the listener makes room: its client connected and is about to
// ask, and the listener runs the moment the accept completes, often before the
// request has crossed loopback. Up to grace_extra connections may be open
// beyond max_connections for that long; past that the newest wait no more.
constexpr auto new_connection_grace = 500ms;
constexpr std::size_t grace_extra = 8;

class session;

// Accepts connections, keeps the list of open ones and its limits. Touched
// only on the server's own thread.
class listener : public std::enable_shared_from_this<listener> {
public:
    listener(asio::io_context& io, const metrics_config& settings, metrics_registry& registry,
             status_page_source status_page)
        : acceptor(io),
          registry(registry),
          status_page(std::move(status_page)),
          max_connections(settings.max_connections),
          request_timeout(settings.request_timeout),
          retry_timer_(io),
          grace_timer_(io) {}

    void accept();
    void close_all();
    // A session's end: it no longer counts against max_connections.
    void forget(session& ended);
    void count_timeout() { registry.listener_dropped(connection_drop::timeout); }
    // Counts an answer, and logs a refusal (throttled).
    void answering(const http_reply& reply, const tcp::socket& socket);
    // `sender` begins sending an answer holding `bytes` of its own. Over
    // answer_budget, the oldest other senders are closed until it fits.
    void holding(const session& sender, std::size_t bytes);
    void released(std::size_t bytes) { answer_bytes_ -= bytes; }

    tcp::acceptor acceptor;
    metrics_registry& registry;
    const status_page_source status_page;
    const std::size_t max_connections;
    const std::chrono::milliseconds request_timeout;

private:
    void on_accept(const beast::error_code& error, tcp::socket socket);
    void make_room();
    // make_room again once a new connection's grace has passed.
    void make_room_at(std::chrono::steady_clock::time_point when);
    bool room_due_ = false;  // make_room is posted
    bool grace_due_ = false;  // make_room waits on grace_timer_
    std::size_t answer_bytes_ = 0;  // held by the answers being sent (holding)

    asio::steady_timer retry_timer_;
    asio::steady_timer grace_timer_;
    std::chrono::milliseconds accept_delay_{0};
    bool stopped_ = false;
    // Open connections, oldest first.
    std::list<std::weak_ptr<session>> open_;
    log_throttle limit_log_{log_period};
    log_throttle accept_log_{log_period};
    log_throttle refusal_log_{log_period};
    log_throttle memory_log_{log_period};
};

// One client connection: request heads into a fixed buffer, answers out.
class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket socket, std::shared_ptr<listener> server)
        : stream_(std::move(socket)), server_(std::move(server)), opened_at_(std::chrono::steady_clock::now()) {}
    ~session() {
        release();
        server_->forget(*this);
    }
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    void start() { next_request(std::nullopt); }

    // Closes the socket at once: pending operations end, and with them the session.
    void close() {
        release();
        server_->forget(*this);
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    // Bytes of its own the answer being sent holds (0: none being sent), and
    // since when it is being sent.
    std::size_t held() const { return held_; }
    std::chrono::steady_clock::time_point sending_since() const { return sending_since_; }
    std::chrono::steady_clock::time_point opened_at() const { return opened_at_; }

    // Whether the client has begun a request the session has yet to answer:
    // bytes of it read, bytes waiting in the socket, or the answer being
    // sent. The listener spares such a session when it makes room.
    bool speaking() const {
        if (reader_.pending() > 0 || !reply_.bytes.empty()) return true;
        beast::error_code error;
        return stream_.socket().available(error) > 0 && !error;
    }

    // Where the listener keeps this session among the open ones.
    std::list<std::weak_ptr<session>>::iterator entry;
    bool listed = false;

private:
    // The request's deadline is absolute: a client trickling a byte at a time
    // is cut off all the same.
    void next_request(std::optional<http_reply> ready) {
        stream_.expires_after(server_->request_timeout);
        answer_or_read(std::move(ready));
    }

    void answer_or_read(std::optional<http_reply> ready) {
        if (ready) {
            reply_ = std::move(*ready);
            write();
            return;
        }
        const auto space = reader_.free_space();
        stream_.async_read_some(asio::buffer(space.data(), space.size()),
                                [self = shared_from_this()](beast::error_code error, std::size_t n) {
                                    self->on_read(error, n);
                                });
    }

    void on_read(const beast::error_code& error, std::size_t n) {
        if (error) {
            // A client that said nothing more after an answer just went idle;
            // one that never finished a request ran out of time.
            if (error == beast::error::timeout && (reader_.pending() > 0 || answered_ == 0)) {
                server_->count_timeout();
            }
            return;  // eof, reset, timeout or closed: the session ends
        }
        answer_or_read(reader_.received(n, server_->registry, server_->status_page));
    }

    void write() {
        server_->answering(reply_, stream_.socket());
        held_ = reply_.bytes.capacity();
        sending_since_ = std::chrono::steady_clock::now();
        server_->holding(*this, held_);
        stream_.expires_after(server_->request_timeout);
        const std::array<asio::const_buffer, 2> bytes{
            asio::buffer(reply_.bytes), reply_.body ? asio::buffer(*reply_.body) : asio::const_buffer()};
        asio::async_write(stream_, bytes,
                          [self = shared_from_this()](beast::error_code error, std::size_t) {
                              self->on_write(error);
                          });
    }

    void on_write(const beast::error_code& error) {
        release();
        if (error) {
            if (error == beast::error::timeout) server_->count_timeout();
            return;
        }
        ++answered_;
        // Sent: the render is no longer held for this client (render_shared).
        reply_.body.reset();
        if (reply_.close) {
            linger();
            return;
        }
        auto next = reader_.answered(reply_, server_->registry, server_->status_page);
        reply_ = {};
        next_request(std::move(next));
    }

    void linger() {
        reply_ = {};
        reader_.clear();
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.expires_after(std::min<std::chrono::milliseconds>(linger_time, server_->request_timeout));
        discard(0);
    }

    void discard(std::size_t dropped) {
        if (dropped >= linger_bytes) return;
        const auto space = reader_.free_space();
        stream_.async_read_some(asio::buffer(space.data(), space.size()),
                                [self = shared_from_this(), dropped](beast::error_code error, std::size_t n) {
                                    if (!error) self->discard(dropped + n);
                                });
    }

    void release() {
        server_->released(held_);
        held_ = 0;
    }

    beast::tcp_stream stream_;
    std::shared_ptr<listener> server_;
    request_reader reader_;
    http_reply reply_;  // being sent
    std::size_t held_ = 0;  // counted in the listener's answer_bytes_
    std::chrono::steady_clock::time_point sending_since_{};
    const std::chrono::steady_clock::time_point opened_at_;
    std::uint64_t answered_ = 0;
};

void listener::accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code error, tcp::socket socket) {
        self->on_accept(error, std::move(socket));
    });
}

void listener::on_accept(const beast::error_code& error, tcp::socket socket) {
    if (stopped_ || error == asio::error::operation_aborted) return;
    if (error) {
        registry.listener_accept_failed();
        // The client gave up before it was accepted: nothing to wait for.
        if (error == asio::error::connection_aborted) {
            accept();
            return;
        }
        accept_delay_ = accept_delay_ == 0ms ? std::chrono::milliseconds(first_accept_delay)
                                             : std::min<std::chrono::milliseconds>(2 * accept_delay_, max_accept_delay);
        if (auto held = accept_log_.admit()) {
            log_event(spdlog::level::warn, "metrics.accept_failed",
                      {{"error", error.message()}, {"retry_in_ms", accept_delay_.count()}, {"suppressed", *held}});
        }
        retry_timer_.expires_after(accept_delay_);
        retry_timer_.async_wait([self = shared_from_this()](beast::error_code waited) {
            if (!waited && !self->stopped_) self->accept();
        });
        return;
    }
    accept_delay_ = 0ms;
    // The next accept first, so nothing below (memory exhausted) can end accepting.
    accept();
    auto connection = std::make_shared<session>(std::move(socket), shared_from_this());
    connection->entry = open_.insert(open_.end(), connection);
    connection->listed = true;
    registry.listener_connections_open(open_.size());
    connection->start();
    if (open_.size() > max_connections && !room_due_) {
        room_due_ = true;
        asio::post(acceptor.get_executor(), [self = shared_from_this()] { self->make_room(); });
    }
}

// More than max_connections are open: the oldest that has not begun a
// request goes, or the oldest of all when every one has, until
// max_connections are left. A well-behaved client asks at once, so it gets in
// even while idle connections flood the listener; and the open sockets stay
// bounded, unlike leaving new ones in the kernel's backlog behind idle ones.
// A flood of requests that never end still loses its oldest, each to its
// request_timeout at the latest.
//
// One that has not begun a request but is younger than new_connection_grace
// is given that time to begin it, while no more than grace_extra are open
// beyond the limit: otherwise a client arriving when every other connection is
// busy (answers under way to clients that never read) would be the one closed,
// every time, because the listener looks before its request has arrived.
//
// Posted, not run from on_accept: a read already taken from a socket has its
// completion queued, and only once that has run does its session count what
// it read (reader_.pending). On the queue's other side, bytes not yet read
// wait in the socket (speaking looks there). So however quickly a flood is
// accepted, a client whose request has arrived is not taken for idle. Until
// it runs, an accept or two more may be open.
void listener::make_room() {
    room_due_ = false;
    while (open_.size() > max_connections) {
        const auto now = std::chrono::steady_clock::now();
        std::shared_ptr<session> victim;
        bool idle = false;
        for (const auto& entry : open_) {
            auto candidate = entry.lock();
            if (!candidate) continue;  // ending: its destructor unlists it
            if (!victim) victim = candidate;  // the oldest, should every one be speaking
            if (!candidate->speaking()) {
                victim = std::move(candidate);
                idle = true;
                break;
            }
        }
        if (!victim) return;
        // Open oldest first: when the first silent one is young, so are the rest.
        const auto grace_ends = victim->opened_at() + new_connection_grace;
        if (idle && now < grace_ends && open_.size() <= max_connections + grace_extra) {
            make_room_at(grace_ends);
            return;
        }
        victim->close();  // unlists it
        registry.listener_dropped(connection_drop::limit);
        if (auto held = limit_log_.admit()) {
            log_event(spdlog::level::warn, "metrics.connection_limit",
                      {{"max_connections", max_connections}, {"suppressed", *held}});
        }
    }
}

// Armed for the oldest young connection; any younger one's grace ends later,
// and make_room arms the timer again for it then.
void listener::make_room_at(std::chrono::steady_clock::time_point when) {
    if (grace_due_) return;
    grace_due_ = true;
    grace_timer_.expires_at(when);
    grace_timer_.async_wait([self = shared_from_this()](beast::error_code waited) {
        self->grace_due_ = false;
        if (!waited && !self->stopped_) self->make_room();
    });
}

// Clients that ask and never read keep their answers until request_timeout;
// the one sending longest is the slowest reader, and a client that reads at
// once (a browser, a scraper, a load balancer's check) is done long before.
void listener::holding(const session& sender, std::size_t bytes) {
    answer_bytes_ += bytes;
    while (answer_bytes_ > answer_budget) {
        std::shared_ptr<session> victim;
        for (const auto& entry : open_) {
            auto candidate = entry.lock();
            if (!candidate || candidate.get() == &sender || candidate->held() == 0) continue;
            if (!victim || candidate->sending_since() < victim->sending_since()) victim = std::move(candidate);
        }
        if (!victim) return;  // the sender's own answer alone: it goes
        victim->close();      // releases its answer
        registry.listener_dropped(connection_drop::memory);
        if (auto held = memory_log_.admit()) {
            log_event(spdlog::level::warn, "metrics.answer_memory",
                      {{"budget_bytes", answer_budget}, {"suppressed", *held}});
        }
    }
}

void listener::answering(const http_reply& reply, const tcp::socket& socket) {
    registry.listener_responded(reply.status);
    if (reply.refusal.empty()) return;
    if (auto held = refusal_log_.admit()) {
        beast::error_code error;
        const auto peer = socket.remote_endpoint(error);
        log_event(spdlog::level::warn, "metrics.request_refused",
                  {{"status", reply.status},
                   {"reason", reply.refusal},
                   {"peer", error ? std::string("unknown") : peer.address().to_string() + ":" + std::to_string(peer.port())},
                   {"suppressed", *held}});
    }
}

void listener::forget(session& ended) {
    if (!ended.listed) return;
    open_.erase(ended.entry);
    ended.listed = false;
    registry.listener_connections_open(open_.size());
}

void listener::close_all() {
    stopped_ = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    retry_timer_.cancel();
    grace_timer_.cancel();
    while (!open_.empty()) {
        if (auto connection = open_.front().lock()) {
            connection->close();  // unlists it
        } else {
            open_.pop_front();
        }
    }
}

// Warns when the listener could take a large share of the process's file
// descriptors, which PostgreSQL and Vitec connections need too.
void check_descriptor_headroom(std::size_t max_connections) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return;
    if (2 * (max_connections + 2) > limit.rlim_cur) {
        log_event(spdlog::level::warn, "metrics.descriptor_headroom",
                  {{"max_connections", max_connections},
                   {"nofile", static_cast<std::uint64_t>(limit.rlim_cur)},
                   {"reason", "metrics.max_connections should stay under half the file descriptor limit "
                              "(LimitNOFILE)"}});
    }
}

}  // namespace

struct metrics_server::impl {
    asio::io_context io{1};
    std::shared_ptr<listener> state;
    std::uint16_t port = 0;
    std::atomic<bool> stopped{false};
    std::thread thread;

    void run() {
        // An exception out of a handler (memory exhausted while rendering)
        // ends that handler and its connection, never the daemon.
        for (;;) {
            try {
                io.run();
                return;
            } catch (const std::exception& error) {
                log_event(spdlog::level::err, "metrics.listener_error", {{"error", error.what()}});
            }
        }
    }
};

metrics_server::metrics_server(const metrics_config& settings, metrics_registry& registry,
                               status_page_source status_page)
    : impl_(std::make_unique<impl>()) {
    if (!settings.listen) throw std::invalid_argument("metrics_server: metrics.listen is not set");
    const listen_address& listen = *settings.listen;
    auto fail = [&](const beast::error_code& error, std::string_view what) {
        throw std::system_error(error, "metrics.listen " + to_string(listen) + ": " + std::string(what));
    };
    impl_->state = std::make_shared<listener>(impl_->io, settings, registry, std::move(status_page));
    // Answers made while a render is still being sent share it, for as long as
    // a client may take to take it: about three renders are held at most,
    // whatever the clients (metrics.hpp).
    registry.set_render_sharing(settings.request_timeout);
    beast::error_code error;
    tcp::resolver resolver(impl_->io);
    const auto endpoints = resolver.resolve(listen.host, std::to_string(listen.port),
                                            tcp::resolver::passive | tcp::resolver::numeric_service, error);
    if (error) fail(error, "cannot resolve");
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    auto& acceptor = impl_->state->acceptor;
    acceptor.open(endpoint.protocol(), error);
    if (error) fail(error, "cannot open a socket");
    acceptor.set_option(asio::socket_base::reuse_address(true), error);
    acceptor.bind(endpoint, error);
    if (error) fail(error, "cannot bind");
    acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error) fail(error, "cannot listen");
    impl_->port = acceptor.local_endpoint().port();
    check_descriptor_headroom(settings.max_connections);
    impl_->state->accept();
    impl_->thread = std::thread([server = impl_.get()] { server->run(); });
}

metrics_server::~metrics_server() { stop(); }

std::uint16_t metrics_server::port() const { return impl_->port; }

void metrics_server::stop() {
    if (impl_->stopped.exchange(true)) return;
    asio::post(impl_->io, [state = impl_->state] { state->close_all(); });
    if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace comeback
