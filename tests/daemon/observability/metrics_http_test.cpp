// The listener's answers, from the bytes a client sent: no socket needed.

#include "observability/metrics_http.hpp"

#include "observability/metrics.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// The body: what follows the blank line.
// A /metrics render comes as a shared body after the head; other bodies in `bytes`.
std::string body_of(const http_reply& reply) {
    return reply.body ? *reply.body : reply.bytes.substr(reply.bytes.find("\r\n\r\n") + 4);
}

}  // namespace

TEST_CASE("GET /metrics answers the registry in the Prometheus text format and keeps the connection") {
    metrics_registry registry(300s);
    registry.window_succeeded("M1", {.inserted = 7}, 1s);
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    const auto reply = answer_http_request(request, registry);
    REQUIRE(reply.complete);
    CHECK(reply.status == 200);
    CHECK(reply.bytes.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(has(reply.bytes, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    CHECK(has(body_of(reply), "comeback_sync_rows_total{change=\"inserted\"} 7\n"));
    CHECK(has(reply.bytes, "\r\nContent-Length: " + std::to_string(body_of(reply).size()) + "\r\n"));
    CHECK(reply.consumed == request.size());
    CHECK_FALSE(reply.close);
    CHECK(reply.refusal.empty());
}

TEST_CASE("HEAD gives GET's length without the body") {
    metrics_registry registry(300s);
    const auto get = answer_http_request("GET /healthz HTTP/1.1\r\n\r\n", registry);
    const auto head = answer_http_request("HEAD /healthz HTTP/1.1\r\n\r\n", registry);
    CHECK(head.status == 200);
    CHECK(body_of(get) == "ok\n");
    CHECK(body_of(head).empty());
    CHECK(has(head.bytes, "\r\nContent-Length: 3\r\n"));
    // /metrics too: its render's length, and no render to send.
    const auto metrics_get = answer_http_request("GET /metrics HTTP/1.1\r\n\r\n", registry);
    const auto metrics_head = answer_http_request("HEAD /metrics HTTP/1.1\r\n\r\n", registry);
    REQUIRE(metrics_get.body);
    CHECK_FALSE(metrics_head.body);
    CHECK(metrics_head.bytes.ends_with("\r\n\r\n"));
    CHECK(has(metrics_head.bytes, "\r\nContent-Length: " + std::to_string(metrics_get.body->size()) + "\r\n"));
}

TEST_CASE("/healthz is 503 with the reason when no customer succeeded in time") {
    metrics_registry stale(1s, metrics_registry::clock::now() - 10s);
    const auto reply = answer_http_request("GET /healthz HTTP/1.1\r\n\r\n", stale);
    CHECK(reply.status == 503);
    CHECK(has(body_of(reply), "no customer has succeeded"));
}

TEST_CASE("other paths are 404 and other methods on a served path 405 with Allow") {
    metrics_registry registry(300s);
    const auto missing = answer_http_request("GET / HTTP/1.1\r\n\r\n", registry);
    CHECK(missing.status == 404);
    CHECK_FALSE(missing.close);
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
        INFO(method);
        const auto reply = answer_http_request(std::string(method) + " /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                                               registry);
        CHECK(reply.status == 405);
        CHECK(has(reply.bytes, "\r\nAllow: GET, HEAD\r\n"));
        CHECK(reply.refusal == "method not allowed: use GET or HEAD");
    }
    CHECK(answer_http_request("GET /metrics?name=x HTTP/1.1\r\n\r\n", registry).status == 200);
}

TEST_CASE("a request head cut short asks for more, and one over the ceiling is refused with 431") {
    metrics_registry registry(300s);
    CHECK_FALSE(answer_http_request("", registry).complete);
    CHECK_FALSE(answer_http_request("GET /metr", registry).complete);
    CHECK_FALSE(answer_http_request("GET /metrics HTTP/1.1\r\nHost: x\r\n", registry).complete);

    std::string endless = "GET /metrics HTTP/1.1\r\n";
    while (endless.size() < max_request_head_bytes) endless += "X-Flood: 0123456789\r\n";
    const auto reply = answer_http_request(endless, registry);
    REQUIRE(reply.complete);
    CHECK(reply.status == 431);
    CHECK(reply.close);
    CHECK(has(reply.bytes, "\r\nConnection: close\r\n"));
    // One byte short of the ceiling is still a request in the making.
    CHECK_FALSE(answer_http_request(endless.substr(0, max_request_head_bytes - 1), registry).complete);
    // Whatever comes after the ceiling is never looked at.
    CHECK(answer_http_request(endless + "\r\n", registry).status == 431);
}

TEST_CASE("a request with a body is refused with 413 and the connection closed, the body unread") {
    metrics_registry registry(300s);
    const std::string chunked = "POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    const auto reply = answer_http_request(chunked + "1;" + std::string(100000, 'x'), registry);
    CHECK(reply.status == 413);
    CHECK(reply.close);
    CHECK(reply.consumed == chunked.size());
    CHECK(reply.refusal == "request bodies are not accepted");

    CHECK(answer_http_request("GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", registry).status == 413);
    CHECK(answer_http_request("GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\n", registry).status == 413);
    // Transfer-Encoding of any kind announces a body.
    CHECK(answer_http_request("GET /healthz HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", registry).status ==
          413);
}

TEST_CASE("what is not an HTTP/1.x request head gets 400 or 505 and the connection closed") {
    metrics_registry registry(300s);
    // Bytes that never end a head wait for more, up to the ceiling (431) or request_timeout.
    CHECK_FALSE(answer_http_request(std::string("\x16\x03\x01\x02\x00", 5), registry).complete);
    for (const std::string& bad : {std::string("\x16\x03\x01\x02\x00\r\n\r\n", 9), std::string("GET\r\n\r\n"),
                                  std::string("GET / a\r\n\r\n"),
                                  std::string("GET /metrics HTTP/1.1\r\nBad Field\r\n\r\n"),
                                  std::string("GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
                                  std::string("GET /metrics HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")}) {
        INFO(bad);
        const auto reply = answer_http_request(bad, registry);
        REQUIRE(reply.complete);
        CHECK(reply.status == 400);
        CHECK(reply.close);
    }
    for (const std::string& other : {std::string("GET /metrics HTTP/1.2\r\n\r\n"),
                                     std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
                                     std::string("GET /metrics HTTX/1.1\r\n\r\n")}) {
        INFO(other);
        const auto reply = answer_http_request(other, registry);
        CHECK(reply.status == 505);
        CHECK(reply.close);
    }
}

TEST_CASE("keep-alive follows the request: HTTP/1.0 closes unless asked, Connection: close closes") {
    metrics_registry registry(300s);
    CHECK(answer_http_request("GET /healthz HTTP/1.0\r\n\r\n", registry).close);
    const auto kept = answer_http_request("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", registry);
    CHECK_FALSE(kept.close);
    CHECK(kept.bytes.starts_with("HTTP/1.0 200 OK\r\n"));
    CHECK(has(kept.bytes, "\r\nConnection: keep-alive\r\n"));
    CHECK(answer_http_request("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", registry).close);
}

TEST_CASE("pipelined requests are answered one at a time, each taking only its own head") {
    metrics_registry registry(300s);
    const std::string first = "GET /healthz HTTP/1.1\r\n\r\n";
    const std::string second = "HEAD /metrics HTTP/1.1\r\n\r\n";
    const std::string both = first + second;
    const auto one = answer_http_request(both, registry);
    CHECK(one.status == 200);
    REQUIRE(one.consumed == first.size());
    const auto two = answer_http_request(std::string_view(both).substr(one.consumed), registry);
    CHECK(two.status == 200);
    CHECK(two.consumed == second.size());
}

namespace {

// Copies `bytes` into the reader as one read.
std::optional<http_reply> feed(request_reader& reader, std::string_view bytes, const metrics_registry& registry) {
    const auto space = reader.free_space();
    REQUIRE(bytes.size() <= space.size());
    std::copy(bytes.begin(), bytes.end(), space.begin());
    return reader.received(bytes.size(), registry);
}

}  // namespace

TEST_CASE("a connection's reader answers once the head is whole, then the pipelined request behind it") {
    metrics_registry registry(300s);
    request_reader reader;
    CHECK(reader.free_space().size() == max_request_head_bytes);
    CHECK_FALSE(feed(reader, "GET /healthz HTTP/1.1\r\n", registry));
    CHECK_FALSE(feed(reader, "\r", registry));
    const auto first = feed(reader, "\nHEAD /metrics HTTP/1.1\r\n\r\nGET /", registry);
    REQUIRE(first);
    CHECK(first->status == 200);
    CHECK(reader.pending() == std::string_view("GET /healthz HTTP/1.1\r\n\r\nHEAD /metrics HTTP/1.1\r\n\r\nGET /").size());
    // Sent: the second request was already here whole.
    const auto second = reader.answered(*first, registry);
    REQUIRE(second);
    CHECK(second->bytes.starts_with("HTTP/1.1 200 OK\r\n"));
    // The third has only begun.
    CHECK_FALSE(reader.answered(*second, registry));
    CHECK(reader.pending() == 5);
}

TEST_CASE("an answer depends on the head alone, not on the bytes that follow it") {
    metrics_registry registry(300s);
    // Beast judges a version it has eight bytes of; a head cut short there is
    // answered the same whether or not more bytes follow.
    const std::string head = "GET / a\r\n\r\n";
    const auto alone = answer_http_request(head, registry);
    const auto followed = answer_http_request(head + "GET /metrics HTTP/1.1\r\n\r\n", registry);
    CHECK(alone.status == 400);
    CHECK(followed.status == alone.status);
    CHECK(followed.bytes == alone.bytes);
}

TEST_CASE("a connection's reader never holds more than the ceiling: a full buffer is answered 431") {
    metrics_registry registry(300s);
    request_reader reader;
    CHECK_FALSE(feed(reader, "GET /metrics HTTP/1.1\r\n", registry));
    // No line end in these bytes: the reader does not look until its buffer is full.
    const std::string filler(reader.free_space().size() - 1, 'x');
    CHECK_FALSE(feed(reader, filler, registry));
    CHECK(reader.free_space().size() == 1);
    const auto reply = feed(reader, "x", registry);
    REQUIRE(reply);
    CHECK(reply->status == 431);
    CHECK(reply->close);
}

TEST_CASE("/ is the status page when there is one, GET or HEAD only, and 404 without one") {
    metrics_registry registry(300s);
    CHECK(answer_http_request("GET / HTTP/1.1\r\n\r\n", registry).status == 404);
    const status_page_source page = [](std::string_view) { return std::string("<p>page</p>"); };
    const auto got = answer_http_request("GET /?page=2 HTTP/1.1\r\n\r\n", registry, page);
    CHECK(got.status == 200);
    CHECK(body_of(got) == "<p>page</p>");
    CHECK(has(got.bytes, "\r\nCache-Control: no-store\r\n"));
    const auto head = answer_http_request("HEAD / HTTP/1.1\r\n\r\n", registry, page);
    CHECK(body_of(head).empty());
    CHECK(has(head.bytes, "\r\nContent-Length: 11\r\n"));
    CHECK(answer_http_request("POST / HTTP/1.1\r\n\r\n", registry, page).status == 405);
}
