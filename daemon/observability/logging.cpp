#include "observability/logging.hpp"

#include "config/config.hpp"
#include "model/text.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace comeback {
namespace {

// Marks a message that log_event rendered as JSON members, so the JSON
// formatter can tell events from plain spdlog calls. An ASCII record
// separator never appears in a rendered event.
constexpr char json_members_mark = '\x1e';

std::string_view level_name(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace: return "trace";
        case spdlog::level::debug: return "debug";
        case spdlog::level::info: return "info";
        case spdlog::level::warn: return "warn";
        case spdlog::level::err: return "error";
        case spdlog::level::critical: return "critical";
        default: return "off";
    }
}

// syslog priorities, which journald reads from a `<N>` line prefix.
int syslog_priority(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
        case spdlog::level::debug: return 7;
        case spdlog::level::info: return 6;
        case spdlog::level::warn: return 4;
        case spdlog::level::err: return 3;
        default: return 2;
    }
}

spdlog::level::level_enum spdlog_level(log_level level) {
    switch (level) {
        case log_level::trace: return spdlog::level::trace;
        case log_level::debug: return spdlog::level::debug;
        case log_level::info: return spdlog::level::info;
        case log_level::warn: return spdlog::level::warn;
        case log_level::error: return spdlog::level::err;
        case log_level::critical: return spdlog::level::critical;
        case log_level::off: return spdlog::level::off;
    }
    return spdlog::level::info;
}

bool needs_quotes(std::string_view value) {
    if (value.empty()) return true;
    for (unsigned char c : value) {
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
    }
    return false;
}


// `"event":"...","key":value...` without braces: the middle of a JSON line.
std::string render_json_members(std::string_view event, std::span<const log_field> fields) {
    std::string out = "\"event\":";
    append_json_string(out, event);
    for (const auto& field : fields) {
        out += ',';
        append_json_string(out, field.key);
        out += ':';
        if (field.bare) {
            out += field.value;
        } else {
            append_json_string(out, field.value);
        }
    }
    return out;
}

// 2026-05-01T10:00:00.123Z
std::string utc_timestamp(std::chrono::system_clock::time_point time) {
    const auto seconds = std::chrono::system_clock::to_time_t(time);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                            time.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(millis));
    return text;
}

// Plain spdlog messages stay on one line, like events.
std::string one_line(std::string_view message) {
    std::string out;
    out.reserve(message.size());
    for (char c : message) {
        if (c == '\n') {
            out += "\\n";
        } else if (c != '\r') {
            out += c;
        }
    }
    return out;
}

class event_formatter final : public spdlog::formatter {
public:
    explicit event_formatter(log_style style) : style_(style) {}

    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const std::string_view payload(msg.payload.data(), msg.payload.size());
        std::string line;
        switch (style_) {
            case log_style::text:
                line = utc_timestamp(msg.time);
                line += ' ';
                line += level_name(msg.level);
                line += ' ';
                line += one_line(payload);
                break;
            case log_style::journal:
                line = '<' + std::to_string(syslog_priority(msg.level)) + '>';
                line += one_line(payload);
                break;
            case log_style::json:
                line = "{\"ts\":";
                append_json_string(line, utc_timestamp(msg.time));
                line += ",\"level\":";
                append_json_string(line, level_name(msg.level));
                line += ',';
                if (!payload.empty() && payload.front() == json_members_mark) {
                    line += payload.substr(1);
                } else {
                    line += "\"event\":\"message\",\"msg\":";
                    append_json_string(line, payload);
                }
                line += '}';
                break;
        }
        line += '\n';
        dest.append(line.data(), line.data() + line.size());
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<event_formatter>(style_);
    }

private:
    log_style style_;
};

// Which style the default logger uses, so log_event renders to match.
std::atomic<log_style> current_style{log_style::text};

}  // namespace

log_field::log_field(std::string_view key, double value)
    : key(key), value(fmt::format("{}", value)), bare(true) {}

log_style choose_log_style(const log_config& config, bool under_journal) {
    if (config.format == log_format::json) return log_style::json;
    return under_journal ? log_style::journal : log_style::text;
}

void setup_logging(const log_config& config) {
    const auto level = spdlog_level(config.level);
    // systemd sets JOURNAL_STREAM when stderr is connected to the journal.
    const auto style = choose_log_style(config, std::getenv("JOURNAL_STREAM") != nullptr);

    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(std::make_unique<event_formatter>(style));
    auto logger = std::make_shared<spdlog::logger>("comeback-sync", std::move(sink));
    logger->set_level(level);
    logger->flush_on(spdlog::level::trace);
    current_style = style;
    spdlog::set_default_logger(std::move(logger));
}

std::string render_event_text(std::string_view event, std::span<const log_field> fields) {
    std::string out(event);
    for (const auto& field : fields) {
        out += ' ';
        out += field.key;
        out += '=';
        if (needs_quotes(field.value)) {
            append_logfmt_string(out, field.value);
        } else {
            out += field.value;
        }
    }
    return out;
}

std::string render_event_json(std::string_view timestamp, std::string_view level,
                              std::string_view event, std::span<const log_field> fields) {
    std::string out = "{\"ts\":";
    append_json_string(out, timestamp);
    out += ",\"level\":";
    append_json_string(out, level);
    out += ',';
    out += render_json_members(event, fields);
    out += '}';
    return out;
}

void log_event(spdlog::level::level_enum level, std::string_view event,
               std::span<const log_field> fields) {
    try {
        auto logger = spdlog::default_logger_raw();
        if (!logger->should_log(level)) return;
        if (current_style == log_style::json) {
            std::string message(1, json_members_mark);
            message += render_json_members(event, fields);
            logger->log(level, "{}", message);
        } else {
            logger->log(level, "{}", render_event_text(event, fields));
        }
    } catch (...) {
        // A log line is never worth failing the work it describes.
    }
}

std::optional<std::uint64_t> log_throttle::admit(clock::time_point now) {
    if (last_ && now - *last_ < period_) {
        ++held_;
        return std::nullopt;
    }
    last_ = now;
    return std::exchange(held_, 0);
}

void log_event(spdlog::level::level_enum level, std::string_view event,
               std::initializer_list<log_field> fields) {
    log_event(level, event, std::span<const log_field>(fields.begin(), fields.size()));
}

}  // namespace comeback
