// The metrics server's request handling on any bytes a client sends, read as
// the server reads them: Beast's parser with the server's limits, fed the bytes
// whole or in pieces (sizes drawn from the input), several requests on one
// connection. Both ways read the same requests and both stop on an error or not;
// each answer is one of the documented statuses, keeps the request's version
// and keep-alive, and announces the length of the body it carries (for HEAD,
// of the body GET would carry).

#include "observability/metrics.hpp"
#include "observability/metrics_http.hpp"
#include "support/check.hpp"
#include "support/split.hpp"

#include <boost/asio/buffer.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace comeback;
namespace http = boost::beast::http;

// A connection holds at most this many requests here; more only repeats.
constexpr int max_requests = 4;

struct connection_read {
    std::vector<metrics_http::request> requests;
    std::optional<boost::beast::error_code> error;  // why reading stopped early
};

// Reads requests from `pieces` as they arrive, the way http::async_read does:
// bytes wait in a buffer until the parser can use them.
connection_read read_requests(const std::vector<std::string_view>& pieces) {
    connection_read out;
    std::string buffer;
    std::optional<metrics_http::request_parser> parser;
    auto next_parser = [&] {
        parser.emplace();
        metrics_http::apply_limits(*parser);
    };
    next_parser();
    for (std::string_view piece : pieces) {
        buffer.append(piece);
        while (!buffer.empty()) {
            boost::beast::error_code error;
            const std::size_t used = parser->put(boost::asio::buffer(buffer), error);
            buffer.erase(0, used);
            if (error == http::error::need_more) break;
            if (error) {
                out.error = error;
                return out;
            }
            if (parser->is_done()) {
                out.requests.push_back(parser->release());
                if (out.requests.size() == max_requests) return out;
                next_parser();
            } else if (used == 0) {
                break;
            }
        }
    }
    // The client closed the connection: a request cut short is an error.
    if (parser->got_some()) {
        boost::beast::error_code error;
        parser->put_eof(error);
        if (error) {
            out.error = error;
        } else if (parser->is_done()) {
            out.requests.push_back(parser->release());
        }
    }
    return out;
}

// The header fields in order, each as name and value.
std::vector<std::pair<std::string_view, std::string_view>> fields(const metrics_http::request& request) {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    for (const auto& field : request) {
        out.emplace_back(std::string_view(field.name_string().data(), field.name_string().size()),
                         std::string_view(field.value().data(), field.value().size()));
    }
    return out;
}

bool same(const metrics_http::request& a, const metrics_http::request& b) {
    return a.method_string() == b.method_string() && a.target() == b.target() &&
           a.version() == b.version() && fields(a) == fields(b) && a.body() == b.body();
}

// `stable`: the registry answers the same at every second (the unhealthy one
// counts the seconds since 1970 in its /healthz reason).
void check_answer(const metrics_http::request& request, const metrics_registry& registry, bool stable) {
    const metrics_http::response reply = metrics_http::answer(request, registry);
    const unsigned status = reply.result_int();
    FUZZ_CHECK(status == 200 || status == 404 || status == 405 || status == 503);
    FUZZ_CHECK(reply.version() == request.version());
    FUZZ_CHECK(reply.keep_alive() == request.keep_alive());
    FUZZ_CHECK(!reply.chunked());
    // The length announced is the body's; a HEAD answer announces GET's and carries none.
    const auto length = reply[http::field::content_length];
    std::size_t announced = 0;
    const auto read = std::from_chars(length.data(), length.data() + length.size(), announced);
    FUZZ_CHECK(read.ec == std::errc{} && read.ptr == length.data() + length.size());
    if (request.method() == http::verb::head) {
        FUZZ_CHECK(reply.body().empty());
        metrics_http::request as_get = request;
        as_get.method(http::verb::get);
        if (stable) FUZZ_CHECK(announced == metrics_http::answer(as_get, registry).body().size());
    } else {
        FUZZ_CHECK(announced == reply.body().size());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using clock = metrics_registry::clock;
    // Healthy for a century, and unhealthy since 1970: /healthz answers 200 and 503.
    static const auto make_registry = [](clock::time_point started, std::chrono::seconds poll) {
        auto registry = std::make_unique<metrics_registry>(poll, started);
        const std::vector<std::string> customers{"M1", "M2"};
        registry->set_customers(customers);
        registry->count_request("M1", "rows");
        registry->count_request("M2", "throttled");
        registry->window_failed("M2", std::chrono::milliseconds{1500});
        return registry;
    };
    static const auto healthy = make_registry(clock::now() + std::chrono::hours{24 * 365 * 100},
                                              std::chrono::seconds{300});
    static const auto unhealthy = make_registry(clock::time_point{}, std::chrono::seconds{1});

    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const std::uint64_t seed = fuzz::digest(bytes);
    const bool stable = seed % 2 == 0;
    const metrics_registry& registry = stable ? *healthy : *unhealthy;

    const connection_read whole = read_requests({bytes});
    const connection_read pieces = read_requests(fuzz::split(bytes, seed));
    // Which error stops the read may differ: Beast checks a request line that
    // arrives whole at once, and one in pieces only when its header is complete.
    // Either way the server drops the connection.
    if (whole.requests.size() != pieces.requests.size() ||
        whole.error.has_value() != pieces.error.has_value()) {
        const auto why = [](const connection_read& read) {
            return read.error ? read.error->message() : std::string("no error");
        };
        std::fprintf(stderr, "whole: %zu requests, %s\npieces: %zu requests, %s\n",
                     whole.requests.size(), why(whole).c_str(), pieces.requests.size(),
                     why(pieces).c_str());
    }
    FUZZ_CHECK(whole.requests.size() == pieces.requests.size());
    FUZZ_CHECK(whole.error.has_value() == pieces.error.has_value());
    for (std::size_t i = 0; i < whole.requests.size(); ++i) {
        FUZZ_CHECK(same(whole.requests[i], pieces.requests[i]));
        FUZZ_CHECK(whole.requests[i].body().size() <= metrics_http::max_body_bytes);
        check_answer(whole.requests[i], registry, stable);
    }
    return 0;
}
