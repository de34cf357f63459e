#pragma once
// A TCP proxy for database fault tests: sits between the daemon and
// PostgreSQL and can swallow traffic the way a network partition does, with
// no reset and no error, so only the daemon's own limits notice.
//
//   blackhole()        stop forwarding in both directions: bytes already read
//                      wait, nothing more is read, new connections are
//                      accepted and left waiting; heal() delivers all of it
//   blackhole_at(pattern, deliver)  the same, from the moment a client sends
//                      bytes holding `pattern` ("COMMIT", "COPY"): held back
//                      with the rest, or delivered first (deliver: the server
//                      runs it, its answer never arrives): a partition mid-commit
//   heal()             forward again
//   reset()            close every connection at once (a restart of a middlebox)
//
// Runs on a thread of its own; every method may be called from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace comeback::test {

class tcp_proxy {
public:
    // Listens on 127.0.0.1 (`listen_port` 0: any free port) and forwards to
    // upstream_host:upstream_port, each piece `delay` after it arrived (a
    // network's latency each way: pieces keep flowing meanwhile; 0: at once).
    // Throws std::system_error when it cannot bind.
    tcp_proxy(std::string upstream_host, std::uint16_t upstream_port, std::uint16_t listen_port = 0,
              std::chrono::milliseconds delay = std::chrono::milliseconds{0});
    ~tcp_proxy();
    tcp_proxy(const tcp_proxy&) = delete;
    tcp_proxy& operator=(const tcp_proxy&) = delete;

    std::uint16_t port() const;

    void blackhole();
    void blackhole_at(std::string pattern, bool deliver);
    void heal();
    void reset();

    // Called on the proxy's thread when a blackhole_at() pattern was met.
    void on_held(std::function<void(const std::string& pattern)> listener);

    bool blackholed() const;
    // Connections currently open through the proxy.
    std::size_t connections() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace comeback::test
