// The listener on real loopback sockets: what it serves, and each of its
// limits against a client that misbehaves.

#include "observability/metrics_server.hpp"

#include "config/config.hpp"
#include "observability/metrics.hpp"
#include "observability/metrics_http.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

metrics_config loopback_settings(unsigned max_connections = 64, std::chrono::milliseconds timeout = 10s) {
    metrics_config settings;
    settings.listen = listen_address{"127.0.0.1", 0};  // any free port
    settings.max_connections = max_connections;
    settings.request_timeout = timeout;
    return settings;
}

// A plain blocking TCP client, so a test can misbehave in ways an HTTP client
// library would not. Waits are bounded only so that a broken server fails the
// test instead of hanging it.
class raw_client {
public:
    explicit raw_client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
            throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
        int on = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    ~raw_client() { ::close(fd_); }
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    // False once the server has closed or reset the connection.
    bool send(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (sent < 0 && errno == EINTR) continue;
            if (sent <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(sent));
        }
        return true;
    }

    // Everything the server sends until it closes the connection.
    std::string read_to_end() {
        std::string out;
        while (wait_readable(60s)) {
            char chunk[4096];
            const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            out.append(chunk, static_cast<std::size_t>(n));
        }
        return out;
    }

    // Reads until `count` responses with Content-Length bodies have arrived.
    std::string read_responses(std::size_t count) {
        std::string out;
        while (complete_responses(out) < count && wait_readable(60s)) {
            char chunk[4096];
            const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) break;
            out.append(chunk, static_cast<std::size_t>(n));
        }
        return out;
    }

    // True when the server has closed the connection (or reset it), false
    // while it is open with nothing to read.
    bool closed_by_server() {
        char byte = 0;
        const ssize_t n = ::recv(fd_, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }

    bool wait_readable(std::chrono::milliseconds limit) {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(limit.count())) > 0;
    }

private:
    static std::size_t complete_responses(const std::string& bytes) {
        std::size_t count = 0, at = 0;
        for (;;) {
            const auto end = bytes.find("\r\n\r\n", at);
            if (end == std::string::npos) return count;
            const auto length_at = bytes.find("Content-Length: ", at);
            const std::size_t length = std::stoul(bytes.substr(length_at + 16));
            if (bytes.size() < end + 4 + length) return count;
            at = end + 4 + length;
            ++count;
        }
    }

    int fd_;
};

std::string get(std::uint16_t port, std::string_view method, std::string_view target) {
    raw_client client(port);
    client.send(std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    return client.read_to_end();
}

// The value of one series in the registry's rendering, e.g.
// comeback_sync_metrics_connections_dropped_total{reason="limit"}.
double sample(const metrics_registry& registry, const std::string& series) {
    const std::string text = registry.render_prometheus();
    const auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return 0;
    return std::stod(text.substr(at + series.size() + 2));
}

// Waits until `holds` is true: the server's thread counts after the client has
// seen the effect. The bound only ends a broken test instead of hanging it.
template <typename Condition>
bool eventually(Condition holds) {
    for (int i = 0; i < 600; ++i) {
        if (holds()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return holds();
}

// Sends `head`, then `filler` again and again until the server stops taking
// it or `give_up` bytes have gone; meanwhile reads what the server answers.
struct flood_result {
    std::string answer;
    std::size_t sent = 0;
};
flood_result flood(std::uint16_t port, const std::string& head, const std::string& filler, std::size_t give_up) {
    raw_client client(port);
    flood_result result;
    std::thread reader([&] { result.answer = client.read_to_end(); });
    bool open = client.send(head);
    result.sent = head.size();
    while (open && result.sent < give_up) {
        open = client.send(filler);
        result.sent += filler.size();
    }
    reader.join();
    return result;
}

}  // namespace

TEST_CASE("the server answers /metrics with the registry in Prometheus format") {
    metrics_registry registry(300s);
    registry.window_succeeded("M1", {.inserted = 7}, 1s);
    metrics_server server(loopback_settings(), registry);

    const auto response = get(server.port(), "GET", "/metrics");
    CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(response.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
    // By default a customer out of trouble is in the totals (metrics.per_customer_series).
    CHECK(response.find("comeback_sync_rows_total{change=\"inserted\"} 7\n") != std::string::npos);
    CHECK(sample(registry, "comeback_sync_metrics_responses_total{code=\"200\"}") == 1);
}

TEST_CASE("/healthz says ok while healthy and 503 with the reason when not") {
    metrics_registry healthy(300s);
    metrics_server a(loopback_settings(), healthy);
    const auto ok = get(a.port(), "GET", "/healthz");
    CHECK(ok.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(ok.ends_with("\r\n\r\nok\n"));

    metrics_registry stale(1s, metrics_registry::clock::now() - 10s);
    metrics_server b(loopback_settings(), stale);
    const auto bad = get(b.port(), "GET", "/healthz");
    CHECK(bad.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    CHECK(bad.find("no customer has succeeded") != std::string::npos);
}

TEST_CASE("unknown paths are 404 and other methods 405") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(), registry);
    CHECK(get(server.port(), "GET", "/").starts_with("HTTP/1.1 404 "));
    const auto post = get(server.port(), "POST", "/metrics");
    CHECK(post.starts_with("HTTP/1.1 405 "));
    CHECK(post.find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
}

TEST_CASE("pipelined requests on a kept connection are answered in order") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(), registry);
    raw_client client(server.port());
    client.send("GET /healthz HTTP/1.1\r\n\r\nGET /nowhere HTTP/1.1\r\n\r\n");
    const auto both = client.read_responses(2);
    const auto second = both.find("HTTP/1.1 404 ");
    CHECK(both.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(second != std::string::npos);
    // And the connection stays open for more.
    client.send("HEAD /healthz HTTP/1.1\r\n\r\n");
    CHECK(client.read_responses(1).starts_with("HTTP/1.1 200 OK\r\n"));
}

TEST_CASE("a taken port is refused naming the address") {
    metrics_registry registry(300s);
    metrics_server first(loopback_settings(), registry);
    metrics_config taken = loopback_settings();
    taken.listen->port = first.port();
    CHECK_THROWS_WITH(metrics_server(taken, registry),
                      Catch::Contains("127.0.0.1:" + std::to_string(first.port())) && Catch::Contains("bind"));
}

TEST_CASE("stopping the server closes a connected client and returns") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(), registry);
    raw_client idle(server.port());
    // Connections are accepted in order: once a later one is answered, the
    // idle one has been accepted and waits for its request.
    CHECK(get(server.port(), "GET", "/healthz").starts_with("HTTP/1.1 200 "));
    server.stop();
    // The server closed the idle connection: its client reads the end of the
    // stream rather than waiting forever.
    CHECK(idle.read_to_end().empty());
    CHECK(idle.closed_by_server());
}

TEST_CASE("a POST whose chunk extension never ends gets 413 and is cut off, its body never read") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(), registry);
    const std::size_t give_up = 64 << 20;
    const auto result = flood(server.port(),
                              "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;",
                              std::string(64 * 1024, 'a'), give_up);
    CHECK(result.answer.starts_with("HTTP/1.1 413 "));
    CHECK(result.answer.find("\r\nConnection: close\r\n") != std::string::npos);
    // The server closed the connection long before the client gave up (what
    // was sent fills socket buffers, not the server).
    CHECK(result.sent < give_up);
    CHECK(sample(registry, "comeback_sync_metrics_responses_total{code=\"413\"}") == 1);
    // And it still serves.
    CHECK(get(server.port(), "GET", "/healthz").starts_with("HTTP/1.1 200 "));
}

TEST_CASE("header lines that never end get 431 at the ceiling and the connection is cut off") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(), registry);
    const std::size_t give_up = 64 << 20;
    std::string lines;
    while (lines.size() < 64 * 1024) lines += "X-Flood: 0123456789abcdef\r\n";
    const auto result = flood(server.port(), "GET /metrics HTTP/1.1\r\n", lines, give_up);
    CHECK(result.answer.starts_with("HTTP/1.1 431 "));
    CHECK(result.sent < give_up);
    CHECK(sample(registry, "comeback_sync_metrics_responses_total{code=\"431\"}") == 1);
    CHECK(get(server.port(), "GET", "/healthz").starts_with("HTTP/1.1 200 "));
}

TEST_CASE("a client trickling its request is cut off at request_timeout however often it sends") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(64, 300ms), registry);
    raw_client slow(server.port());
    // A byte every 20 ms: each read is quick, the request as a whole (2 s) is not.
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(50, 'z') +
                                "\r\n\r\n";
    std::size_t sent = 0;
    while (sent < request.size() && !slow.closed_by_server()) {
        if (!slow.send(request.substr(sent, 1))) break;
        ++sent;
        std::this_thread::sleep_for(20ms);
    }
    CHECK(sent < request.size());       // cut off before it could finish
    CHECK(slow.read_to_end().empty());  // and never answered
    CHECK(eventually([&] {
        return sample(registry, "comeback_sync_metrics_connections_dropped_total{reason=\"timeout\"}") == 1;
    }));
}

TEST_CASE("clients that ask for /metrics and never read share one render, however many") {
    // 2,000 customers in full detail: a render of about 4 MB, more than a
    // socket's buffers take, so every answer is still being sent.
    metrics_registry registry(300s);
    std::vector<std::string> ids;
    for (int i = 1; i <= 2'000; ++i) ids.push_back("F" + std::to_string(10'000 + i));
    registry.set_customers(ids);
    for (const auto& id : ids) registry.window_succeeded(id, {.inserted = 20}, 0.3s);
    registry.set_per_customer_series(per_customer_series::all);
    metrics_server server(loopback_settings(64), registry);

    std::vector<std::unique_ptr<raw_client>> never_read;
    for (int i = 0; i < 30; ++i) {
        never_read.push_back(std::make_unique<raw_client>(server.port()));
        REQUIRE(never_read.back()->send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    }
    CHECK(eventually([&] { return sample(registry, R"(comeback_sync_metrics_responses_total{code="200"})") >= 30; }));
    // One render held for all thirty, not one each.
    CHECK(sample(registry, "comeback_sync_metrics_renders_total") == 1);
    // And it is whole for a client that reads it.
    const auto answer = never_read.front()->read_responses(1);
    const auto body = answer.substr(answer.find("\r\n\r\n") + 4);
    CHECK(body.size() > 1'000'000);
    CHECK(answer.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
}

TEST_CASE("answers held by clients that never read stay within their budget: the oldest sender makes room") {
    // A status page of 10 MB: more than sockets' buffers take, so each
    // answer to a client that never reads stays being sent; two are over the
    // listener's 16 MiB budget for answers.
    metrics_registry registry(300s);
    const std::string page = "<!DOCTYPE html>" + std::string(10'000'000, 'x');
    metrics_server server(loopback_settings(64), registry, [&](std::string_view) { return page; });

    std::vector<std::unique_ptr<raw_client>> never_read;
    for (int i = 0; i < 6; ++i) {
        never_read.push_back(std::make_unique<raw_client>(server.port()));
        REQUIRE(never_read.back()->send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        // Each is answered, and makes room, before the next asks.
        CHECK(eventually([&] {
            return sample(registry, R"(comeback_sync_metrics_responses_total{code="200"})") >= i + 1;
        }));
    }
    CHECK(eventually([&] {
        return sample(registry, R"(comeback_sync_metrics_connections_dropped_total{reason="memory"})") >= 5;
    }));
    // The first was cut off: what it gets, reading now, ends before its page does.
    CHECK(never_read.front()->read_to_end().size() < page.size());
    // A client that reads gets its page whole, the last of the others making room.
    const auto answer = get(server.port(), "GET", "/");
    CHECK(answer.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(answer.ends_with(page));
    CHECK(sample(registry, R"(comeback_sync_metrics_connections_dropped_total{reason="memory"})") == 6);
}

TEST_CASE("over the answer budget the answer sent longest goes, not the oldest connection's") {
    // Pages of 7 MB: two fit the 16 MiB budget, a third does not.
    metrics_registry registry(300s);
    const std::string page = "<!DOCTYPE html>" + std::string(7'000'000, 'x');
    metrics_server server(loopback_settings(64), registry, [&](std::string_view) { return page; });
    auto ask = [&](raw_client& client, double answered) {
        REQUIRE(client.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        CHECK(eventually([&] { return sample(registry, R"(comeback_sync_metrics_responses_total{code="200"})") >= answered; }));
    };
    raw_client kept(server.port());  // the oldest connection, as a kept-alive scraper's is
    raw_client slow(server.port());
    raw_client last(server.port());
    ask(slow, 1);  // its answer is the one sent longest
    ask(kept, 2);
    ask(last, 3);  // over the budget
    CHECK(eventually([&] {
        return sample(registry, R"(comeback_sync_metrics_connections_dropped_total{reason="memory"})") == 1;
    }));
    CHECK(slow.read_to_end().size() < page.size());
    const auto answer = kept.read_responses(1);
    CHECK(answer.ends_with(page));
}

TEST_CASE("beyond max_connections the oldest connection makes room, so a new client is answered") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(2), registry);
    raw_client oldest(server.port());
    raw_client older(server.port());
    // Silent past a new connection's grace (half a second): idle.
    std::this_thread::sleep_for(1s);
    // The third evicts the oldest and is answered.
    CHECK(get(server.port(), "GET", "/healthz").starts_with("HTTP/1.1 200 "));
    CHECK(oldest.read_to_end().empty());
    CHECK(oldest.closed_by_server());
    CHECK_FALSE(older.closed_by_server());
    CHECK(sample(registry, "comeback_sync_metrics_connections_dropped_total{reason=\"limit\"}") == 1);
    CHECK(sample(registry, "comeback_sync_metrics_connections_open") <= 2);

    // A crowd of idle connections never keeps a client out, nor holds more
    // than the cap and the few new ones given their grace, and after it the cap.
    std::vector<std::unique_ptr<raw_client>> crowd;
    for (int i = 0; i < 50; ++i) crowd.push_back(std::make_unique<raw_client>(server.port()));
    CHECK(get(server.port(), "GET", "/healthz").starts_with("HTTP/1.1 200 "));
    CHECK(sample(registry, "comeback_sync_metrics_connections_open") <= 2 + 8 + 2);
    CHECK(eventually([&] { return sample(registry, "comeback_sync_metrics_connections_open") <= 2; }));
    std::size_t open = 0;
    for (auto& client : crowd) open += client->closed_by_server() ? 0 : 1;
    CHECK(open <= 2);
}

TEST_CASE("a new client is given time to ask even when every other connection has a request under way") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(2), registry);
    // Both places taken by requests that have begun and never end.
    raw_client first(server.port());
    raw_client second(server.port());
    REQUIRE(first.send("GET /healthz HTTP/1.1\r\n"));
    REQUIRE(second.send("GET /healthz HTTP/1.1\r\n"));
    CHECK(eventually([&] { return sample(registry, "comeback_sync_metrics_connections_open") == 2; }));
    // A client that connects and asks a moment later, as one does whose
    // request has not crossed loopback when the listener looks, is answered:
    // the listener does not take it for the idle one.
    raw_client late(server.port());
    std::this_thread::sleep_for(100ms);
    REQUIRE(late.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
    CHECK(late.read_to_end().starts_with("HTTP/1.1 200 "));
    // The limit holds all the same: one that stays silent past its grace is
    // the idle one, and goes.
    raw_client silent(server.port());
    CHECK(eventually([&] { return silent.closed_by_server(); }));
    CHECK(eventually([&] { return sample(registry, "comeback_sync_metrics_connections_open") == 2; }));
    CHECK_FALSE(first.closed_by_server());
    CHECK_FALSE(second.closed_by_server());
}

TEST_CASE("making room spares a connection whose request has begun, however old") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(2), registry);
    // The oldest has sent part of a request: it is spoken for, not idle.
    raw_client asking(server.port());
    REQUIRE(asking.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    raw_client idle(server.port());
    // Two more connections at the limit: each closes the oldest idle one.
    raw_client newer(server.port());
    raw_client newest(server.port());
    CHECK(eventually([&] { return idle.closed_by_server() && newer.closed_by_server(); }));
    CHECK_FALSE(asking.closed_by_server());
    CHECK_FALSE(newest.closed_by_server());
    REQUIRE(asking.send("Connection: close\r\n\r\n"));
    CHECK(asking.read_to_end().starts_with("HTTP/1.1 200 "));

    // When every open connection has begun a request, one goes all the same:
    // the limit holds.
    std::vector<std::unique_ptr<raw_client>> askers;
    for (int i = 0; i < 3; ++i) {
        askers.push_back(std::make_unique<raw_client>(server.port()));
        REQUIRE(askers.back()->send("GET /healthz HTTP/1.1\r\n"));
    }
    CHECK(eventually([&] {
        std::size_t closed = 0;
        for (auto& client : askers) closed += client->closed_by_server() ? 1 : 0;
        return closed == 1;
    }));
    CHECK(eventually([&] { return sample(registry, "comeback_sync_metrics_connections_open") == 2; }));
}

TEST_CASE("out of file descriptors, the listener backs off instead of spinning, then serves again") {
    metrics_registry registry(300s);
    metrics_server server(loopback_settings(), registry);
    CHECK(get(server.port(), "GET", "/healthz").starts_with("HTTP/1.1 200 "));

    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
    std::vector<int> filler;
    {
        // A low limit, so filling it takes few descriptors.
        rlimit low = saved;
        low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 4096);
        REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
        const int null_fd = ::open("/dev/null", O_RDONLY);
        REQUIRE(null_fd >= 0);
        filler.push_back(null_fd);
        for (int fd; (fd = ::dup(null_fd)) >= 0;) filler.push_back(fd);
        REQUIRE(errno == EMFILE);
    }
    // One descriptor for a client; the kernel completes its connection, the
    // listener has none left to accept it with.
    ::close(filler.back());
    filler.pop_back();
    raw_client starved(server.port());
    // A second passes: a busy loop would fail to accept hundreds of thousands of
    // times in it, the back-off (100 ms doubling to 1 s) about five times.
    std::this_thread::sleep_for(1s);
    const double errors = sample(registry, "comeback_sync_metrics_accept_errors_total");
    for (int fd : filler) ::close(fd);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
    CHECK(errors >= 1);
    CHECK(errors <= 20);

    // With descriptors back, the waiting client is served.
    starved.send("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(starved.read_to_end().starts_with("HTTP/1.1 200 "));
}

TEST_CASE("GET / serves the status page as HTML that may run nothing, and is unknown without one") {
    metrics_registry registry(300s);
    {
        metrics_server plain(loopback_settings(), registry);
        CHECK(get(plain.port(), "GET", "/").starts_with("HTTP/1.1 404 "));
    }
    std::string asked;
    metrics_server server(loopback_settings(), registry, [&](std::string_view target) {
        asked = target;
        return std::string("<!DOCTYPE html><p>page</p>");
    });
    const auto response = get(server.port(), "GET", "/?page=2");
    server.stop();
    CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(response.ends_with("\r\n\r\n<!DOCTYPE html><p>page</p>"));
    CHECK(asked == "/?page=2");
    CHECK(response.find("\r\nContent-Type: text/html; charset=utf-8\r\n") != std::string::npos);
    CHECK(response.find("\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n") !=
          std::string::npos);
    CHECK(response.find("\r\nCache-Control: no-store\r\n") != std::string::npos);
}
