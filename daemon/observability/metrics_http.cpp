#include "observability/metrics_http.hpp"

#include "observability/metrics.hpp"

#include <string_view>

namespace comeback::metrics_http {

namespace http = boost::beast::http;

void apply_limits(request_parser& parser) {
    parser.header_limit(max_header_bytes);
    parser.body_limit(max_body_bytes);
}

response answer(const request& request, const metrics_registry& registry,
                const status_page_source& status_page) {
    response reply;
    reply.version(request.version());
    reply.keep_alive(request.keep_alive());
    reply.set(http::field::server, "comeback-sync");
    const std::string_view target(request.target().data(), request.target().size());
    const auto path = target.substr(0, target.find('?'));
    const bool known = path == "/metrics" || path == "/healthz" || (path == "/" && status_page);
    if (!known) {
        reply.result(http::status::not_found);
        reply.set(http::field::content_type, "text/plain; charset=utf-8");
        reply.body() = "not found: try /metrics or /healthz\n";
    } else if (request.method() != http::verb::get && request.method() != http::verb::head) {
        reply.result(http::status::method_not_allowed);
        reply.set(http::field::allow, "GET, HEAD");
        reply.set(http::field::content_type, "text/plain; charset=utf-8");
        reply.body() = "method not allowed\n";
    } else if (path == "/") {
        reply.result(http::status::ok);
        reply.set(http::field::content_type, "text/html; charset=utf-8");
        // Nothing runs and nothing loads from elsewhere, even if a text slipped
        // through unescaped; no-store: every reload asks the daemon.
        reply.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
        reply.set(http::field::cache_control, "no-store");
        reply.set("X-Content-Type-Options", "nosniff");
        reply.body() = status_page(target);
    } else if (path == "/metrics") {
        reply.result(http::status::ok);
        reply.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        reply.body() = registry.render_prometheus();
    } else {
        const auto health = registry.health();
        reply.result(health.healthy ? http::status::ok : http::status::service_unavailable);
        reply.set(http::field::content_type, "text/plain; charset=utf-8");
        reply.body() = health.reason + "\n";
    }
    reply.prepare_payload();
    if (request.method() == http::verb::head) reply.body().clear();
    return reply;
}

}  // namespace comeback::metrics_http
