#include "observability/metrics_http.hpp"

#include "observability/metrics.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <fmt/format.h>

#include <cstring>

namespace comeback {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::string_view prometheus_text = "text/plain; version=0.0.4; charset=utf-8";

struct response {
    http::status status;
    std::string_view content_type;
    std::string body;
    bool allow = false;  // 405: say which methods are
    bool page = false;   // the status page: may run and load nothing, never cached
    std::shared_ptr<const std::string> shared = nullptr;  // instead of body: a shared render
};

// The request's part in the answer.
struct exchange {
    unsigned version = 11;  // 10 or 11; 11 when the request did not get as far as saying
    bool keep_alive = false;
    bool head = false;      // HEAD: the length of the body, but no body
    std::size_t consumed = 0;
};

http_reply finish(const exchange& request, response answer, bool close) {
    http_reply reply;
    reply.complete = true;
    reply.status = static_cast<unsigned>(answer.status);
    reply.consumed = request.consumed;
    reply.close = close || !request.keep_alive;
    if (answer.status != http::status::ok && answer.status != http::status::service_unavailable) {
        std::string_view why = answer.body;
        if (why.ends_with('\n')) why.remove_suffix(1);
        reply.refusal = why;
    }
    auto out = std::back_inserter(reply.bytes);
    const auto reason = http::obsolete_reason(answer.status);
    fmt::format_to(out, "HTTP/1.{} {} {}\r\nServer: comeback-sync\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                   request.version == 10 ? 0 : 1, reply.status, std::string_view(reason.data(), reason.size()),
                   answer.content_type, answer.shared ? answer.shared->size() : answer.body.size());
    if (answer.allow) reply.bytes += "Allow: GET, HEAD\r\n";
    if (answer.page) {
        // Nothing runs and nothing loads from elsewhere, even if a text slipped
        // through unescaped; no-store: every reload asks the daemon.
        reply.bytes +=
            "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
    }
    if (reply.close) {
        reply.bytes += "Connection: close\r\n";
    } else if (request.version == 10) {
        reply.bytes += "Connection: keep-alive\r\n";
    }
    reply.bytes += "\r\n";
    if (request.head) return reply;
    if (answer.shared) {
        reply.body = std::move(answer.shared);
    } else {
        reply.bytes += answer.body;
    }
    return reply;
}

// A request the listener will not serve: answered, and the connection closed,
// since whatever follows its head (a body) is never read.
http_reply refuse(const exchange& request, http::status status, std::string body) {
    return finish(request, {status, text_plain, std::move(body)}, true);
}

response route(http::verb method, std::string_view target, const metrics_registry& registry,
               const status_page_source& status_page) {
    const auto path = target.substr(0, target.find('?'));
    const bool served = path == "/metrics" || path == "/healthz" || (path == "/" && status_page);
    if (!served) return {http::status::not_found, text_plain, "not found: try /metrics or /healthz\n"};
    if (method != http::verb::get && method != http::verb::head) {
        return {http::status::method_not_allowed, text_plain, "method not allowed: use GET or HEAD\n", true};
    }
    if (path == "/") {
        response page{http::status::ok, "text/html; charset=utf-8", status_page(target)};
        page.page = true;
        return page;
    }
    if (path == "/metrics") {
        response metrics{http::status::ok, prometheus_text, {}};
        metrics.shared = registry.render_shared();
        return metrics;
    }
    auto health = registry.health();
    return {health.healthy ? http::status::ok : http::status::service_unavailable, text_plain,
            std::move(health.reason) + "\n"};
}

}  // namespace

http_reply answer_http_request(std::string_view received, const metrics_registry& registry,
                               const status_page_source& status_page) {
    exchange request;
    // The head is judged only once it is whole, and only its own bytes go to
    // the parser: Beast reports some errors early when more bytes happen to
    // follow, and the answer must not depend on how the bytes arrived.
    const auto end = received.substr(0, max_request_head_bytes).find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (received.size() < max_request_head_bytes) return {};
        return refuse(request, http::status::request_header_fields_too_large,
                      fmt::format("request line and header fields over {} bytes\n", max_request_head_bytes));
    }
    const std::string_view head = received.substr(0, end + 4);

    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(max_request_head_bytes));
    beast::error_code error;
    // Not eager: the parser stops after the head and never looks at a body.
    request.consumed = parser.put(boost::asio::buffer(head.data(), head.size()), error);
    // Beast reads only HTTP/1.0 and 1.1; any other version, or none, is this error.
    if (error == http::error::bad_version) {
        return refuse(request, http::status::http_version_not_supported, "only HTTP/1.0 and HTTP/1.1\n");
    }
    if (error == http::error::need_more) {
        return refuse(request, http::status::bad_request, "bad request: the head ends inside its request line\n");
    }
    if (error) return refuse(request, http::status::bad_request, "bad request: " + error.message() + "\n");

    const auto& message = parser.get();
    request.version = message.version();
    request.keep_alive = parser.keep_alive();
    request.head = message.method() == http::verb::head;
    const auto length = parser.content_length();
    if ((length && *length > 0) || message.count(http::field::transfer_encoding) > 0) {
        return refuse(request, http::status::payload_too_large, "request bodies are not accepted\n");
    }
    const auto target = message.target();
    return finish(request,
                  route(message.method(), std::string_view(target.data(), target.size()), registry, status_page),
                  false);
}

std::optional<http_reply> request_reader::look(const metrics_registry& registry,
                                               const status_page_source& status_page) {
    auto reply = answer_http_request(std::string_view(buffer_.data(), used_), registry, status_page);
    if (!reply.complete) return std::nullopt;
    return reply;
}

std::optional<http_reply> request_reader::received(std::size_t n, const metrics_registry& registry,
                                                   const status_page_source& status_page) {
    const bool new_line = std::memchr(buffer_.data() + used_, '\n', n) != nullptr;
    used_ += n;
    if (!new_line && used_ < buffer_.size()) return std::nullopt;
    return look(registry, status_page);
}

std::optional<http_reply> request_reader::answered(const http_reply& reply, const metrics_registry& registry,
                                                   const status_page_source& status_page) {
    // Keep what followed the request: a pipelined next one, or its start.
    std::memmove(buffer_.data(), buffer_.data() + reply.consumed, used_ - reply.consumed);
    used_ -= reply.consumed;
    // As for bytes just received: no line end, no whole head to look at.
    if (std::memchr(buffer_.data(), '\n', used_) == nullptr && used_ < buffer_.size()) return std::nullopt;
    return look(registry, status_page);
}

}  // namespace comeback
