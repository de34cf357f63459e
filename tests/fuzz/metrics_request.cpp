// The metrics listener's request handling on any bytes a client sends, fed the
// way the server feeds it: through request_reader, reads no larger than its
// free space, the bytes whole or in pieces (sizes drawn from the input), every
// answer on one connection until one closes it. Both ways give the same
// answers. Each answer is one of the documented statuses in a well-formed
// response head that announces the length of the body it carries (for HEAD,
// of the body GET would carry); an answer that keeps the connection has taken
// some bytes, so the server cannot loop on one request; nothing the reader
// holds exceeds its ceiling.

#include "observability/metrics.hpp"
#include "observability/metrics_http.hpp"
#include "support/check.hpp"
#include "support/split.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace comeback;

// A connection gets at most this many answers here; more only repeats.
constexpr std::size_t max_answers = 8;

struct connection {
    std::vector<http_reply> answers;
    bool closed_by_server = false;
};

// Hands `pieces` to a request_reader as the server's reads would, answering
// every request it completes.
connection serve(const std::vector<std::string_view>& pieces, const metrics_registry& registry) {
    connection out;
    request_reader reader;
    auto take = [&](std::optional<http_reply> reply) {
        while (reply && !out.closed_by_server && out.answers.size() < max_answers) {
            FUZZ_CHECK(reply->complete);
            out.answers.push_back(*reply);
            if (reply->close) {
                out.closed_by_server = true;
                return;
            }
            // Progress: a kept connection's answer took its request's bytes.
            FUZZ_CHECK(reply->consumed > 0 && reply->consumed <= reader.pending());
            reply = reader.answered(*reply, registry);
        }
    };
    for (std::string_view piece : pieces) {
        do {
            if (out.closed_by_server || out.answers.size() >= max_answers) return out;
            const auto space = reader.free_space();
            FUZZ_CHECK(!space.empty());
            const std::size_t n = std::min(space.size(), piece.size());
            std::memcpy(space.data(), piece.data(), n);
            piece.remove_prefix(n);
            take(reader.received(n, registry));
            FUZZ_CHECK(reader.pending() <= max_request_head_bytes);
        } while (!piece.empty());
    }
    return out;
}

std::string_view head_of(const http_reply& reply) {
    const auto end = reply.bytes.find("\r\n\r\n");
    FUZZ_CHECK(end != std::string::npos);
    return std::string_view(reply.bytes).substr(0, end + 4);
}

// The value of header field `name` in `head`, spelled as the listener spells it.
std::string_view field(std::string_view head, std::string_view name) {
    const std::string key = "\r\n" + std::string(name) + ": ";
    const auto at = head.find(key);
    if (at == std::string_view::npos) return {};
    const auto from = at + key.size();
    return head.substr(from, head.find("\r\n", from) - from);
}

void check_answer(const http_reply& reply) {
    constexpr unsigned documented[] = {200, 400, 404, 405, 413, 431, 503, 505};
    FUZZ_CHECK(std::find(std::begin(documented), std::end(documented), reply.status) != std::end(documented));
    const std::string_view head = head_of(reply);
    FUZZ_CHECK(head.starts_with("HTTP/1.0 ") || head.starts_with("HTTP/1.1 "));
    FUZZ_CHECK(head.substr(9, 3) == std::to_string(reply.status));
    // Refusals close: whatever follows a refused head is never read.
    if (reply.status != 200 && reply.status != 503 && reply.status != 404 && reply.status != 405) {
        FUZZ_CHECK(reply.close);
    }
    if (reply.close) FUZZ_CHECK(field(head, "Connection") == "close");
    const std::string_view length = field(head, "Content-Length");
    std::size_t announced = 0;
    const auto read = std::from_chars(length.data(), length.data() + length.size(), announced);
    FUZZ_CHECK(!length.empty() && read.ec == std::errc{} && read.ptr == length.data() + length.size());
    // A /metrics render follows the head as a shared body.
    const std::size_t carried = reply.bytes.size() - head.size() + (reply.body ? reply.body->size() : 0);
    FUZZ_CHECK(carried == announced || carried == 0);  // 0: an answer to HEAD
}

bool same(const http_reply& a, const http_reply& b, bool stable) {
    return a.status == b.status && a.consumed == b.consumed && a.close == b.close &&
           (!stable || (a.bytes == b.bytes && (a.body ? *a.body : "") == (b.body ? *b.body : "")));
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
        // Answers share a render while one is held, as the listener's do: a
        // render counts the renders made, so two would differ by that line.
        registry->set_render_sharing(std::chrono::hours{1});
        return registry;
    };
    static const auto healthy = make_registry(clock::now() + std::chrono::hours{24 * 365 * 100},
                                              std::chrono::seconds{300});
    static const auto unhealthy = make_registry(clock::time_point{}, std::chrono::seconds{1});

    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const std::uint64_t seed = fuzz::digest(bytes);
    // `stable`: the registry answers the same at every second (the unhealthy
    // one counts the seconds since 1970 in its /healthz reason).
    const bool stable = seed % 2 == 0;
    const metrics_registry& registry = stable ? *healthy : *unhealthy;

    // Held for this input: every answer to it shares that render, HEAD's
    // lengths included (an answer to HEAD holds no render of its own).
    const auto pinned = registry.render_shared();
    const connection whole = serve({bytes}, registry);
    const connection pieces = serve(fuzz::split(bytes, seed), registry);
    if (whole.answers.size() != pieces.answers.size() || whole.closed_by_server != pieces.closed_by_server) {
        std::fprintf(stderr, "whole: %zu answers%s\npieces: %zu answers%s\n", whole.answers.size(),
                     whole.closed_by_server ? ", closed" : "", pieces.answers.size(),
                     pieces.closed_by_server ? ", closed" : "");
    }
    FUZZ_CHECK(whole.answers.size() == pieces.answers.size());
    FUZZ_CHECK(whole.closed_by_server == pieces.closed_by_server);
    for (std::size_t i = 0; i < whole.answers.size(); ++i) {
        FUZZ_CHECK(same(whole.answers[i], pieces.answers[i], stable));
        check_answer(whole.answers[i]);
    }
    return 0;
}
