#include "fetch/vitec_client.hpp"

#include "fetch/credentials.hpp"
#include "fetch/request_limiter.hpp"
#include "parse/response_parser.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <memory>
#include <span>
#include <stdexcept>
#include <vector>

#ifndef COMEBACK_VERSION
#error "COMEBACK_VERSION must be defined by the build (PROJECT_VERSION)"
#endif

namespace comeback {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);
// An idle keep-alive connection older than this is closed rather than reused:
// servers drop idle connections after a while, and a fresh one is cheap.
constexpr auto idle_limit = std::chrono::seconds(30);
// A large body is read 64 KiB at a time. A small one needs far less, and
// every request in flight holds its buffers: a connection starts with
// small_read and grows to read_chunk for a body larger than that.
constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t small_read = 16 * 1024;
// A body read straight into the sink's room (body_room) is read up to this
// much at a time: fewer, larger reads than Beast's 64 KiB.
constexpr std::size_t direct_read = 1024 * 1024;

// How many bytes of body one read takes: no more than the body announces.
std::size_t body_read_size(const boost::optional<std::uint64_t>& announced) {
    if (!announced) return read_chunk;  // chunked, or read to the end
    return static_cast<std::size_t>(std::clamp<std::uint64_t>(*announced, 1, read_chunk));
}

bool is_unreserved(unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string percent_encode(std::string_view text, bool keep_colon) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (is_unreserved(c) || (keep_colon && c == ':')) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    return out;
}

// The request as it goes on the wire, in one buffer: Beast's serializer hands
// the SSL stream several buffers, which it copies into a buffer of its own to
// encrypt them in one record, and that copy of the Authorization header would
// stay in memory unwiped. One buffer goes through as it is, and is wiped when
// the fetch ends.
std::string request_text(std::string_view target, std::string_view host,
                         const basic_credentials& credentials) {
    constexpr std::string_view agent = "comeback-sync/" COMEBACK_VERSION;
    std::string text;
    text.reserve(target.size() + host.size() + agent.size() + credentials.authorization().size() + 128);
    text.append("GET ").append(target).append(" HTTP/1.1\r\n");
    text.append("Host: ").append(host).append("\r\n");
    text.append("User-Agent: ").append(agent).append("\r\n");
    text.append("Accept: application/json\r\n");
    text.append("Authorization: ").append(credentials.authorization()).append("\r\n");
    text.append("\r\n");
    return text;
}

}  // namespace

// One keep-alive connection, plain or TLS.
struct connection {
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    // Fixed ceiling: a response head, a chunk header with its extensions or a
    // trailer section that does not fit is a protocol_violation, not growth
    // until memory runs out.
    beast::flat_buffer buffer{read_buffer_limit};
    clock_type::time_point last_used = clock_type::now();

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

    template <class Function>
    auto visit(Function&& function) {
        return secure ? function(*secure) : function(*plain);
    }
};

struct exchange_outcome {
    fetch_result result;
    bool keep_alive = false;
    bool nothing_received = false;  // the connection failed before any response byte
};

struct vitec_client::impl {
    impl(net::any_io_executor executor, const vitec_config& config)
        : executor(executor), config(config),
          limiter(executor, config.max_concurrent_requests, config.max_requests_per_second) {}

    net::any_io_executor executor;
    vitec_config config;
    const vitec_url& base = config.base_url;  // parsed and checked by etl/config
    std::optional<ssl::context> tls_context;
    request_limiter limiter;
    std::vector<std::unique_ptr<connection>> idle;
    std::uint64_t opened = 0;

    std::string target_for(const window_request& request) const {
        return base.path_prefix + "/Report/Task/" + percent_encode(request.customer_id, false) +
               "/Comeback?from=" + percent_encode(request.from, true) +
               "&to=" + percent_encode(request.to, true) +
               "&date=" + percent_encode(request.date_criteria, true);
    }

    std::unique_ptr<connection> take_idle() {
        while (!idle.empty()) {
            auto candidate = std::move(idle.back());
            idle.pop_back();
            if (clock_type::now() - candidate->last_used < idle_limit) return candidate;
        }
        return nullptr;
    }

    void put_idle(std::unique_ptr<connection> conn) {
        conn->last_used = clock_type::now();
        conn->lowest().expires_never();
        // A large body grew the buffer; an idle connection keeps only the small one.
        if (conn->buffer.size() == 0 && conn->buffer.capacity() > small_read) {
            conn->buffer.shrink_to_fit();
            conn->buffer.reserve(small_read);
        }
        idle.push_back(std::move(conn));
        // Never keep more idle connections than could be in use at once.
        while (idle.size() > std::max(1u, config.max_concurrent_requests))
            idle.erase(idle.begin());
    }

    // Resolves the base URL's host before `deadline`. Asio's resolver runs
    // getaddrinfo on a thread of its own, which nothing can interrupt: at the
    // deadline the lookup is abandoned to finish in the background (its
    // result dropped) instead of being waited for.
    net::awaitable<std::optional<tcp::resolver::results_type>> resolve(clock_type::time_point deadline,
                                                                       std::optional<failure>& failure) {
        struct lookup {
            explicit lookup(const net::any_io_executor& executor) : resolver(executor), wake(executor) {}
            tcp::resolver resolver;
            net::steady_timer wake;
            error_code error;
            tcp::resolver::results_type results;
            bool finished = false;
        };
        auto state = std::make_shared<lookup>(executor);
        state->wake.expires_at(deadline);
        state->resolver.async_resolve(base.host, std::to_string(base.port),
                                      [state](error_code error, tcp::resolver::results_type results) {
                                          state->error = error;
                                          state->results = std::move(results);
                                          state->finished = true;
                                          state->wake.cancel();
                                      });
        co_await state->wake.async_wait(tuple_awaitable);
        if (!state->finished) {
            state->resolver.cancel();
            failure = classify_transport_error(beast::error::timeout, "resolve", base.authority);
            co_return std::nullopt;
        }
        if (state->error) {
            failure = classify_transport_error(state->error, "resolve", base.authority);
            co_return std::nullopt;
        }
        co_return std::move(state->results);
    }

    net::awaitable<std::unique_ptr<connection>> open(clock_type::time_point deadline,
                                                     std::optional<failure>& failure) {
        auto where = base.authority;
        auto endpoints = co_await resolve(deadline, failure);
        if (!endpoints) co_return nullptr;
        auto conn = std::make_unique<connection>();
        // Beast reads at most the buffer's free capacity (512 bytes at least):
        // an empty flat_buffer meant one recvmsg per 512 bytes of body.
        conn->buffer.reserve(small_read);
        if (base.tls)
            conn->secure.emplace(executor, *tls_context);
        else
            conn->plain.emplace(executor);
        auto& lowest = conn->lowest();
        lowest.expires_at(deadline);
        auto [connect_error, endpoint] = co_await lowest.async_connect(*endpoints, tuple_awaitable);
        if (connect_error) {
            failure = classify_transport_error(connect_error, "connect to", where);
            co_return nullptr;
        }
        ++opened;
        if (base.tls) {
            auto& stream = *conn->secure;
            // SNI names the host for servers with several certificates; it is
            // not sent for an IP address literal (RFC 6066).
            if (!base.host_is_address &&
                !SSL_set_tlsext_host_name(stream.native_handle(), base.host.c_str())) {
                failure = classify_transport_error(
                    error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()),
                    "set SNI for", where);
                co_return nullptr;
            }
            stream.set_verify_mode(ssl::verify_peer);
            stream.set_verify_callback(ssl::host_name_verification(base.host));
            lowest.expires_at(deadline);
            auto [handshake_error] =
                co_await stream.async_handshake(ssl::stream_base::client, tuple_awaitable);
            if (handshake_error) {
                // Asio's host_name_verification rejects a certificate that does
                // not name the host without an error of its own, which OpenSSL
                // then reports as unspecified.
                const long verify = SSL_get_verify_result(stream.native_handle());
                failure = verify == X509_V_OK
                              ? classify_transport_error(handshake_error, "TLS handshake with", where)
                              : classify_tls_rejected(where, verify == X509_V_ERR_UNSPECIFIED
                                                                 ? "the certificate does not name " + base.host
                                                                 : std::string(X509_verify_cert_error_string(verify)));
                co_return nullptr;
            }
        }
        spdlog::debug("vitec_connection_opened host={} tls={}", where, base.tls);
        co_return conn;
    }

    // Ends a connection the server will not reuse. For TLS a close_notify is
    // sent; the server may close without answering it, which shows as
    // stream_truncated: harmless here, as the whole response was already read.
    net::awaitable<void> close_gracefully(std::unique_ptr<connection> conn) {
        if (conn->secure) {
            conn->lowest().expires_after(std::chrono::seconds(2));
            auto [error] = co_await conn->secure->async_shutdown(tuple_awaitable);
            if (error && error != ssl::error::stream_truncated && error != net::error::eof)
                spdlog::debug("vitec_tls_shutdown_failed host={} error={}", base.authority,
                              sanitize_message(error.message(), 200));
        }
        error_code ignored;
        conn->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        conn->lowest().close();
    }

    // Writes the request and reads the response into the sink. The server gets
    // until `deadline` for all of it; time spent inside the sink (back-pressure
    // from the loader) moves the deadline, as it is not the server's, but never
    // past `ceiling` (docs/configuration.md, "Limits on what a server sends").
    template <class Stream>
    net::awaitable<exchange_outcome> exchange(Stream& stream, connection& conn, std::string_view request,
                                              clock_type::time_point deadline,
                                              const clock_type::time_point ceiling,
                                              const basic_credentials& credentials,
                                              const body_sink& sink, const body_room& room) {
        exchange_outcome out;
        auto& lowest = conn.lowest();
        lowest.expires_at(deadline);
        auto [write_error, written] =
            co_await net::async_write(stream, net::buffer(request), tuple_awaitable);
        if (write_error) {
            out.nothing_received = true;
            out.result.failure = classify_transport_error(write_error, "write request to", base.authority);
            co_return out;
        }

        http::response_parser<http::buffer_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(response_head_limit));
        // The body limit depends on the status (below); none while the head is read.
        parser.body_limit(boost::none);
        lowest.expires_at(deadline);
        auto [head_error, head_bytes] =
            co_await http::async_read_header(stream, conn.buffer, parser, tuple_awaitable);
        if (head_error) {
            out.nothing_received = conn.buffer.size() == 0 &&
                                   (head_error == http::error::end_of_stream ||
                                    head_error == net::error::eof ||
                                    head_error == net::error::connection_reset ||
                                    head_error == net::error::broken_pipe ||
                                    head_error == ssl::error::stream_truncated);
            out.result.failure = classify_transport_error(head_error, "read response from", base.authority);
            co_return out;
        }
        const auto& head = parser.get();
        out.result.http_status = static_cast<int>(head.result_int());
        response_facts facts;
        facts.status = out.result.http_status;
        facts.content_type = head[http::field::content_type];
        facts.credentials = &credentials;
        if (auto it = head.find(http::field::retry_after); it != head.end())
            facts.retry_after = it->value();
        auto failure = classify_response(facts, config.retry.max_retry_after,
                                         std::chrono::system_clock::now());
        if (!failure) {
            // Rows: at most max_response_bytes, whether the server announces
            // more (refused before a byte of it is read) or sends more.
            if (auto announced = parser.content_length(); announced && *announced > config.max_response_bytes) {
                out.result.failure = classify_response_too_large(base.authority, config.max_response_bytes, *announced);
                co_return out;
            }
            parser.body_limit(config.max_response_bytes);
        }
        // Copies: the header fields are views into the parser, which reads on below.
        std::string content_type(facts.content_type);
        std::optional<std::string> retry_after;
        if (facts.retry_after) retry_after.emplace(*facts.retry_after);

        const std::size_t read_size = body_read_size(parser.content_length());
        if (read_size > small_read) conn.buffer.reserve(read_size);
        const auto chunk_bytes = std::make_unique_for_overwrite<char[]>(read_size);
        const std::span<char> chunk(chunk_bytes.get(), read_size);
        std::string error_body;
        bool error_body_cut = false;
        bool array_checked = false;
        bool is_first_chunk = true;
        // Hands a piece of a body that is not an error's to the sink. False:
        // it ended the exchange (out.result.failure says why).
        auto deliver = [&](std::string_view got, bool more_to_come) -> net::awaitable<bool> {
            if (is_first_chunk && got.starts_with("\xEF\xBB\xBF")) got.remove_prefix(3);  // UTF-8 BOM
            is_first_chunk = false;
            if (!array_checked) {
                auto first = got.find_first_not_of(" \t\r\n");
                if (first != std::string_view::npos) {
                    array_checked = true;
                    if (got[first] != '[') {
                        out.result.failure = classify_broken_body(
                            "the body is not a JSON array (it starts with '" +
                            credentials.shown(got.substr(first), 20, true) + "')");
                        co_return false;
                    }
                }
            }
            auto sink_started = clock_type::now();
            try {
                co_await sink(got);
            } catch (const response_error& error) {
                // The parser may quote the body; redacted whole, before the message is cut.
                std::string reason = error.what();
                credentials.redact(reason);
                out.result.failure = classify_broken_body(reason, error.kind());
                co_return false;
            }
            deadline = std::min(deadline + (clock_type::now() - sink_started), ceiling);
            if (clock_type::now() >= ceiling && more_to_come) {
                out.result.failure = classify_transport_error(beast::error::timeout, "read body from",
                                                              base.authority);
                out.result.failure->message +=
                    " (loading the rows held the body back past twice vitec.request_timeout)";
                co_return false;
            }
            out.result.bytes += got.size();
            co_return true;
        };
        bool whole = false;  // the body was read to its end
        if (const auto length = parser.content_length(); !failure && room && length) {
            // A body of announced length whose sink offers room is read from
            // the socket straight into it, past Beast's parser: one copy (the
            // kernel's) where the parser's buffer and the read chunk made
            // three, and reads as large as the room. What the head's read
            // brought of the body goes first.
            std::uint64_t remaining = *length;
            if (const auto buffered = conn.buffer.data(); buffered.size() > 0 && remaining > 0) {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buffered.size(), remaining));
                const std::string_view got(static_cast<const char*>(buffered.data()), n);
                remaining -= n;
                const bool delivered = co_await deliver(got, remaining > 0);
                conn.buffer.consume(n);
                if (!delivered) co_return out;
            }
            while (remaining > 0) {
                const auto wanted = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, direct_read));
                std::span<char> into = room(wanted);
                if (into.empty()) into = chunk.first(std::min(chunk.size(), wanted));
                lowest.expires_at(deadline);
                auto [read_error, n] = co_await stream.async_read_some(net::buffer(into.data(), into.size()),
                                                                       tuple_awaitable);
                // The server closed before the length it announced, as Beast's parser says it.
                if (read_error == net::error::eof) read_error = http::error::partial_message;
                if (read_error) {
                    out.result.failure = classify_transport_error(read_error, "read body from", base.authority);
                    co_return out;
                }
                remaining -= n;
                if (!co_await deliver(std::string_view(into.data(), n), remaining > 0)) co_return out;
            }
            whole = true;
        }
        while (!whole && !parser.is_done()) {
            // A chunked body goes through Beast's parser, which copies it
            // from its read buffer into the sink's room when there is one,
            // else into the read chunk.
            std::span<char> into = failure || !room ? std::span<char>() : room(chunk.size());
            if (into.empty()) into = chunk;
            parser.get().body().data = into.data();
            parser.get().body().size = into.size();
            lowest.expires_at(deadline);
            auto [read_error, n] = co_await http::async_read(stream, conn.buffer, parser, tuple_awaitable);
            if (read_error == http::error::need_buffer) read_error = {};
            if (read_error == http::error::body_limit) {
                out.result.failure = classify_response_too_large(base.authority, config.max_response_bytes,
                                                                 std::nullopt);
                co_return out;
            }
            if (read_error) {
                out.result.failure = classify_transport_error(read_error, "read body from", base.authority);
                co_return out;
            }
            std::string_view got(into.data(), into.size() - parser.get().body().size);
            if (got.empty()) continue;
            if (failure) {
                // Only the start of an error body is kept, for its message; a
                // longer one is not worth reading, so the connection is dropped.
                const std::size_t left = error_body_limit - error_body.size();
                error_body.append(got.substr(0, left));
                if (got.size() > left || (error_body.size() == error_body_limit && !parser.is_done())) {
                    error_body_cut = true;
                    break;
                }
                continue;
            }
            if (!co_await deliver(got, !parser.is_done())) co_return out;
        }
        whole = whole || parser.is_done();
        if (failure) {
            facts.content_type = content_type;
            if (retry_after) facts.retry_after = *retry_after;
            facts.error_body = error_body;
            facts.error_body_cut = error_body_cut;
            out.result.failure = classify_response(facts, config.retry.max_retry_after,
                                                   std::chrono::system_clock::now());
            wipe(error_body);  // may echo what was sent
        } else if (!array_checked) {
            out.result.failure = classify_broken_body("the body is empty, expected a JSON array");
            co_return out;
        }
        out.keep_alive = whole && parser.keep_alive();
        co_return out;
    }

    net::awaitable<fetch_result> fetch(const window_request& request, const body_sink& sink,
                                       const body_room& room) {
        auto permit = co_await limiter.acquire(request.customer_id);
        const auto started = clock_type::now();
        fetch_result result;
        if (request.customer_id.empty() || request.customer_id == "." || request.customer_id == "..") {
            // "." and ".." would be read as path steps even when encoded (RFC 3986 6.2.2.2).
            result.failure = failure{failure_kind::request_rejected, 0,
                                     "customer id '" + sanitize_message(request.customer_id) +
                                         "' cannot be sent as a path segment",
                                     std::nullopt};
            co_return result;
        }
        static const secret no_password;
        const basic_credentials credentials(config.username,
                                            request.password ? *request.password : no_password);
        std::string request_bytes = request_text(target_for(request), base.authority, credentials);
        struct wiped {
            std::string& text;
            ~wiped() { wipe(text); }
        } wipe_request{request_bytes};

        const auto deadline = started + config.request_timeout;
        const auto ceiling = deadline + config.request_timeout;
        for (int pass = 0; pass < 2; ++pass) {
            std::optional<failure> failure;
            auto conn = take_idle();
            const bool reused = conn != nullptr;
            if (!conn) conn = co_await open(deadline, failure);
            if (!conn) {
                result.failure = std::move(failure);
                break;
            }
            auto out = co_await conn->visit([&](auto& stream) {
                return exchange(stream, *conn, request_bytes, deadline, ceiling, credentials, sink, room);
            });
            // A reused connection the server had already closed fails before any
            // response byte: that says nothing about this request, so it is
            // sent once more on a fresh connection.
            if (reused && out.nothing_received && pass == 0) {
                spdlog::debug("vitec_stale_connection host={}", base.authority);
                continue;
            }
            result = std::move(out.result);
            if (out.keep_alive)
                put_idle(std::move(conn));
            else if (!result.failure)
                co_await close_gracefully(std::move(conn));
            break;
        }
        result.duration =
            std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started);
        // Every message was made from redacted text; once more, whole, in case.
        if (result.failure) credentials.redact(result.failure->message);
        spdlog::debug("vitec_fetch_done customer={} status={} kind={} bytes={} duration_ms={}",
                      sanitize_message(request.customer_id, 100), result.http_status,
                      outcome_label(result.kind()), result.bytes, result.duration.count());
        co_return result;
    }
};

vitec_client::vitec_client(net::any_io_executor executor, const vitec_config& config)
    : impl_(std::make_shared<impl>(executor, config)) {
    auto& self = *impl_;
    if (self.base.tls) {
        self.tls_context.emplace(ssl::context::tls_client);
        self.tls_context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                      ssl::context::no_tlsv1_1);
        error_code error;
        if (config.ca_file.empty()) {
            self.tls_context->set_default_verify_paths(error);
            if (error)
                throw std::invalid_argument("cannot load the system CA store: " + error.message());
        } else {
            // etl/config checked that the path is a readable file; what it holds is read here.
            self.tls_context->load_verify_file(config.ca_file, error);
            if (error)
                throw std::invalid_argument("cannot load vitec.ca_file '" + config.ca_file +
                                            "' (PEM CA certificates expected): " + error.message());
        }
        self.tls_context->set_verify_mode(ssl::verify_peer);
    }
}

vitec_client::~vitec_client() = default;

net::awaitable<fetch_result> vitec_client::fetch(const window_request& request,
                                                 const body_sink& sink, const body_room& room) {
    auto keep = impl_;  // the client may be destroyed by its owner while this runs
    co_return co_await keep->fetch(request, sink, room);
}

std::string vitec_client::target_for(const window_request& request) const {
    return impl_->target_for(request);
}

std::uint64_t vitec_client::connections_opened() const { return impl_->opened; }

void vitec_client::count_request_starts(std::shared_ptr<wait_stats> stats) {
    impl_->limiter.count_into(std::move(stats));
}

}  // namespace comeback
