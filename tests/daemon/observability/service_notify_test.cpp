#include "observability/service_notify.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace comeback;

namespace {

// A datagram socket standing in for systemd's notification socket.
struct notify_socket {
    notify_socket() {
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        path = "/tmp/comeback-notify-" + std::to_string(getpid());
        unlink(path.c_str());
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        path.copy(address.sun_path, sizeof address.sun_path - 1);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        timeval timeout{2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setenv("NOTIFY_SOCKET", path.c_str(), 1);
    }
    ~notify_socket() {
        unsetenv("NOTIFY_SOCKET");
        close(fd);
        unlink(path.c_str());
    }
    std::string receive() const {
        char buffer[1024];
        const auto n = recv(fd, buffer, sizeof buffer, 0);
        return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
    }
    int fd = -1;
    std::string path;
};

}  // namespace

TEST_CASE("notifications reach systemd's socket as READY, STATUS, RELOADING, STOPPING and WATCHDOG") {
    notify_socket systemd;
    notify_ready();
    CHECK(systemd.receive() == "READY=1");
    notify_status("3 customers, 2 fresh\nlast: M1");
    CHECK(systemd.receive() == "STATUS=3 customers, 2 fresh last: M1");
    notify_reloading();
    CHECK(systemd.receive() == "RELOADING=1");
    notify_stopping();
    CHECK(systemd.receive() == "STOPPING=1");
    notify_watchdog();
    CHECK(systemd.receive() == "WATCHDOG=1");
}

TEST_CASE("the watchdog interval comes from WATCHDOG_USEC for this process only") {
    setenv("WATCHDOG_USEC", "20000000", 1);
    setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
    CHECK(watchdog_interval() == std::chrono::seconds(20));
    setenv("WATCHDOG_PID", "1", 1);
    CHECK_FALSE(watchdog_interval().has_value());
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    CHECK_FALSE(watchdog_interval().has_value());
}
