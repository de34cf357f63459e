#include "observability/service_notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace comeback {

// sd_notify() returns 0 when NOTIFY_SOCKET is unset and a negative errno on
// failure; a lost notification is not worth stopping the daemon for, and
// systemd's own timeouts report a daemon that never says READY.

void notify_ready() { sd_notify(0, "READY=1"); }

void notify_reloading() { sd_notify(0, "RELOADING=1"); }

void notify_stopping() { sd_notify(0, "STOPPING=1"); }

void notify_status(std::string_view line) {
    std::string message = "STATUS=";
    for (char c : line) message += (c == '\n' || c == '\r') ? ' ' : c;
    sd_notify(0, message.c_str());
}

void notify_watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec);
    return std::nullopt;
}

}  // namespace comeback
