// metrics-flood: a hostile client of the /metrics listener, for the end-to-end
// test that the listener survives it. Runs until SIGTERM or SIGINT, then
// prints what it did as one line of key=value on stdout.
//
//   metrics-flood PORT chunk-extension [THREADS]
//       POST /metrics with a chunked body whose chunk extension never ends
//   metrics-flood PORT header-lines [THREADS]
//       GET /metrics followed by header lines that never end
//   metrics-flood PORT idle [CONNECTIONS]
//       CONNECTIONS (default 1000) connections that send nothing; every
//       connection the server closes is opened again, twice a second
//   metrics-flood PORT unread [CONNECTIONS]
//       CONNECTIONS (default 64) connections that each send eight pipelined
//       GET /metrics and never read an answer, with a small receive buffer;
//       every connection the server closes is opened again, twice a second
//   metrics-flood PORT scrape [THREADS]
//       valid scrapes without pause: 8 pipelined GET /metrics a connection,
//       the last asking to close, every byte of the answers read
//
// Each flooding thread reconnects as soon as the server closes on it, so the
// pressure never lets up. Plain POSIX sockets: nothing here may be lenient
// the way an HTTP client library is.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> stopping{false};
std::atomic<std::uint64_t> connections{0};     // connections opened
std::atomic<std::uint64_t> closed{0};          // connections the server ended
std::atomic<std::uint64_t> bytes_sent{0};
std::atomic<std::uint64_t> connect_failures{0};
std::atomic<std::uint64_t> bytes_received{0};
std::uint16_t port = 0;

// receive_buffer: SO_RCVBUF before connecting (0: the system's), so a client
// that never reads leaves the answers in the server's hands, not its own kernel's.
int open_connection(int receive_buffer = 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (receive_buffer > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Sends give up after a second, so a stop request is seen promptly.
    timeval second{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &second, sizeof second);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        ++connect_failures;
        return -1;
    }
    ++connections;
    return fd;
}

// False when the server closed or reset the connection.
bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty() && !stopping) {
        const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (sent <= 0) return false;
        bytes_sent += static_cast<std::uint64_t>(sent);
        bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
    return true;
}

// Sends `head`, then `filler` forever, reconnecting whenever the server ends it.
void flood(const std::string& head, const std::string& filler) {
    while (!stopping) {
        const int fd = open_connection();
        if (fd < 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        bool open = send_all(fd, head);
        while (open && !stopping) open = send_all(fd, filler);
        if (!open) ++closed;
        ::close(fd);
    }
}

bool closed_by_server(int fd) {
    char byte;
    const ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

// Holds `count` connections open, each sending `request` once when opened
// (idle ones send nothing) and never reading.
void hold_open(std::size_t count, const std::string& request) {
    // Room for the connections, above the usual 1024.
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < count + 64) {
        limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, count + 64);
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    std::vector<int> fds(count, -1);
    while (!stopping) {
        for (int& fd : fds) {
            if (fd >= 0 && closed_by_server(fd)) {
                ++closed;
                ::close(fd);
                fd = -1;
            }
            if (fd < 0 && !stopping) {
                fd = open_connection(request.empty() ? 0 : 4096);
                if (fd >= 0 && !send_all(fd, request)) {
                    ++closed;
                    ::close(fd);
                    fd = -1;
                }
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    for (int fd : fds)
        if (fd >= 0) ::close(fd);
}

// Scrapes as fast as the listener answers: each connection sends eight
// requests at once and reads the answers to the end.
void scrape() {
    std::string requests;
    for (int i = 0; i < 7; ++i) requests += "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    requests += "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    std::vector<char> buffer(64 * 1024);
    while (!stopping) {
        const int fd = open_connection();
        if (fd < 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        timeval second{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &second, sizeof second);
        bool open = send_all(fd, requests);
        while (open && !stopping) {
            const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            if (n <= 0) break;
            bytes_received += static_cast<std::uint64_t>(n);
        }
        ++closed;
        ::close(fd);
    }
}

int usage() {
    std::fprintf(stderr, "usage: metrics-flood PORT chunk-extension|header-lines [THREADS]\n"
                         "       metrics-flood PORT idle|unread [CONNECTIONS]\n"
                         "       metrics-flood PORT scrape [THREADS]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) return usage();
    port = static_cast<std::uint16_t>(std::atoi(argv[1]));
    const std::string mode = argv[2];
    const long count = argc == 4 ? std::atol(argv[3]) : 0;
    if (port == 0 || count < 0) return usage();

    // Workers never see the stop signals: the main thread waits for them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    std::vector<std::thread> workers;
    if (mode == "chunk-extension" || mode == "header-lines") {
        const bool chunked = mode == "chunk-extension";
        const std::string head = chunked ? "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;"
                                         : "GET /metrics HTTP/1.1\r\nHost: x\r\n";
        std::string filler;
        while (filler.size() < 64 * 1024) filler += chunked ? "ext-without-end" : "X-Flood: 0123456789abcdef\r\n";
        for (long i = 0; i < (count > 0 ? count : 4); ++i) workers.emplace_back(flood, head, filler);
    } else if (mode == "scrape") {
        for (long i = 0; i < (count > 0 ? count : 4); ++i) workers.emplace_back(scrape);
    } else if (mode == "idle") {
        workers.emplace_back(hold_open, static_cast<std::size_t>(count > 0 ? count : 1000), std::string());
    } else if (mode == "unread") {
        std::string requests;
        for (int i = 0; i < 8; ++i) requests += "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        workers.emplace_back(hold_open, static_cast<std::size_t>(count > 0 ? count : 64), requests);
    } else {
        return usage();
    }

    int signal = 0;
    sigwait(&signals, &signal);
    stopping = true;
    for (auto& worker : workers) worker.join();
    std::printf("mode=%s connections=%llu closed_by_server=%llu bytes_sent=%llu bytes_received=%llu "
                "connect_failures=%llu\n",
                mode.c_str(), static_cast<unsigned long long>(connections.load()),
                static_cast<unsigned long long>(closed.load()), static_cast<unsigned long long>(bytes_sent.load()),
                static_cast<unsigned long long>(bytes_received.load()),
                static_cast<unsigned long long>(connect_failures.load()));
    return 0;
}
