#pragma once
// Talking to systemd for Type=notify units (sd_notify). Every function does
// nothing when not run under systemd (NOTIFY_SOCKET unset), so the daemon calls
// them unconditionally. None throws.

#include <chrono>
#include <optional>
#include <string_view>

namespace comeback {

// READY=1 once the daemon serves (after migrations, listeners bound).
void notify_ready();
// RELOADING=1 at the start of a SIGHUP reload; notify_ready() when done.
void notify_reloading();
// STOPPING=1 when shutdown begins.
void notify_stopping();
// STATUS=<line>, shown by `systemctl status`; one line, no secrets.
void notify_status(std::string_view line);
// WATCHDOG=1; send at least every watchdog_interval() / 2.
void notify_watchdog();
// The unit's WatchdogSec, when the watchdog is enabled for this process.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace comeback
