#pragma once
// Logs for operators: one line per event, a fixed event name plus key=value
// fields, e.g.
//     log_event(spdlog::level::info, "window.loaded", {{"customer", "M1"}, {"rows", 120}});
// renders as `window.loaded customer=M1 rows=120` (values with spaces, quotes,
// `=` or control characters are quoted and escaped) or, with `log.format: json`,
// as one JSON object per line.
//
// Secrets: the event API writes exactly the fields it is given and nothing else.
// It has no overload for comeback::secret, so a password cannot be passed by
// accident; callers must never pass reveal()ed values, Authorization headers or
// connection strings with passwords.
//
// Plain spdlog calls (spdlog::info("...")) go through the same sinks and format;
// in JSON they become {"event":"message","msg":"..."}.

#include <spdlog/common.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace comeback {

struct log_config;

// How lines are written to stderr.
enum class log_style {
    text,     // `2026-05-01T10:00:00.123Z info window.loaded customer=M1 rows=120`
    journal,  // `<6>window.loaded customer=M1 rows=120`: journald adds the time and
              // reads the <N> syslog priority
    json,     // `{"ts":"...","level":"info","event":"window.loaded","customer":"M1","rows":120}`
};

// One key=value field of an event. Integers, floating point numbers and bools
// stay numbers (or true/false) in JSON; everything else is a string.
struct log_field {
    log_field(std::string_view key, std::string value) : key(key), value(std::move(value)) {}
    log_field(std::string_view key, std::string_view value) : key(key), value(value) {}
    log_field(std::string_view key, const char* value) : key(key), value(value) {}
    log_field(std::string_view key, bool value)
        : key(key), value(value ? "true" : "false"), bare(true) {}
    template <std::integral T>
        requires(!std::same_as<T, bool> && !std::same_as<T, char>)
    log_field(std::string_view key, T value) : key(key), value(std::to_string(value)), bare(true) {}
    log_field(std::string_view key, double value);

    std::string_view key;  // a fixed identifier such as "customer"; must outlive the call
    std::string value;
    bool bare = false;  // a number or bool: unquoted in JSON
};

// The style for a configuration: json when log.format is json, otherwise
// journal when running under systemd (JOURNAL_STREAM set), otherwise text.
log_style choose_log_style(const log_config& config, bool under_journal);

// Replaces spdlog's default logger with one writing to stderr in the chosen
// style at log.level (off: nothing at all). Call once at start-up (and again
// after a reload). The values come parsed from etl/config.
void setup_logging(const log_config& config);

// Logs one event through spdlog's default logger. Never throws.
void log_event(spdlog::level::level_enum level, std::string_view event,
               std::initializer_list<log_field> fields = {});
void log_event(spdlog::level::level_enum level, std::string_view event,
               std::span<const log_field> fields);

// Keeps a repeated event (a refused connection in a flood) from flooding the
// log: the first occurrence is written, then at most one per `period`, each
// carrying how many were held back before it. Not thread-safe: one per thread
// that logs the event.
class log_throttle {
public:
    using clock = std::chrono::steady_clock;

    explicit log_throttle(clock::duration period) : period_(period) {}

    // Whether to write a line for this occurrence. When it returns a value,
    // that is how many occurrences since the last written line were held back.
    std::optional<std::uint64_t> admit(clock::time_point now = clock::now());

private:
    clock::duration period_;
    std::optional<clock::time_point> last_;
    std::uint64_t held_ = 0;
};

// `event key=value ...` exactly as the text and journal styles write it after
// their prefix. Exposed for tests.
std::string render_event_text(std::string_view event, std::span<const log_field> fields);

// Renders a whole JSON line for an event: the object log_event writes in json
// style, with the given time stamp text and level. Exposed for tests.
std::string render_event_json(std::string_view timestamp, std::string_view level,
                              std::string_view event, std::span<const log_field> fields);

}  // namespace comeback
