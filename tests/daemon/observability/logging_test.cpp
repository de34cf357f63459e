#include "observability/logging.hpp"

#include "config/config.hpp"

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <unistd.h>

using namespace comeback;

namespace {

// Runs `body` with stderr sent to a temporary file and returns what was written.
template <typename F>
std::string capture_stderr(F body) {
    std::fflush(stderr);
    char path[] = "/tmp/comeback-logging-test.XXXXXX";
    const int file = mkstemp(path);
    REQUIRE(file >= 0);
    const int saved = dup(2);
    dup2(file, 2);
    body();
    spdlog::default_logger()->flush();
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(file);
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    std::remove(path);
    return text.str();
}

log_config config_of(log_level level, log_format format) {
    log_config config;
    config.level = level;
    config.format = format;
    return config;
}

}  // namespace

TEST_CASE("an event renders as its name and key=value fields") {
    const log_field fields[] = {{"customer", "M1"}, {"rows", 120}, {"ok", true}};
    CHECK(render_event_text("window.loaded", fields) == "window.loaded customer=M1 rows=120 ok=true");
}

TEST_CASE("values with spaces, quotes, equals signs or control characters are quoted") {
    const log_field fields[] = {{"error", "connection reset by peer"},
                                {"name", "say \"hi\""},
                                {"q", "a=b"},
                                {"multi", "one\ntwo\x01"},
                                {"empty", ""}};
    CHECK(render_event_text("x", fields) ==
          R"(x error="connection reset by peer" name="say \"hi\"" q="a=b" multi="one\ntwo\x01" empty="")");
}

TEST_CASE("an event renders as one JSON object with numbers left bare") {
    const log_field fields[] = {{"customer", "M\"1"}, {"rows", 120}, {"rate", 2.5}, {"bell", "\x07"}};
    CHECK(render_event_json("2026-01-02T03:04:05.006Z", "info", "window.loaded", fields) ==
          R"({"ts":"2026-01-02T03:04:05.006Z","level":"info","event":"window.loaded","customer":"M\"1","rows":120,"rate":2.5,"bell":"\u0007"})");
}

TEST_CASE("json wins over the journal; text becomes journal under systemd") {
    CHECK(choose_log_style(config_of(log_level::info, log_format::json), true) == log_style::json);
    CHECK(choose_log_style(config_of(log_level::info, log_format::text), true) == log_style::journal);
    CHECK(choose_log_style(config_of(log_level::info, log_format::text), false) == log_style::text);
}

TEST_CASE("log.level off writes nothing, not even critical events") {
    unsetenv("JOURNAL_STREAM");
    const auto out = capture_stderr([] {
        setup_logging(config_of(log_level::off, log_format::text));
        log_event(spdlog::level::critical, "command.failed", {{"error", "gone"}});
        spdlog::critical("plain");
    });
    CHECK(out.empty());
    // The same calls at critical do write: the silence above is the level's doing.
    const auto loud = capture_stderr([] {
        setup_logging(config_of(log_level::critical, log_format::text));
        log_event(spdlog::level::critical, "command.failed", {{"error", "gone"}});
    });
    CHECK(loud.find("command.failed error=gone") != std::string::npos);
    setup_logging(config_of(log_level::info, log_format::text));
}

TEST_CASE("text logs carry a UTC time stamp and the level, and honour log.level") {
    unsetenv("JOURNAL_STREAM");
    const auto out = capture_stderr([] {
        setup_logging(config_of(log_level::info, log_format::text));
        log_event(spdlog::level::debug, "hidden.event");
        log_event(spdlog::level::warn, "window.failed", {{"customer", "M1"}, {"error", "timed out"}});
        spdlog::info("plain\nmessage");
    });
    INFO(out);
    const std::regex expected(
        R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn window\.failed customer=M1 error="timed out"
\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info plain\\nmessage
)");
    CHECK(std::regex_match(out, expected));
}

TEST_CASE("under systemd lines start with a syslog priority and no time stamp") {
    setenv("JOURNAL_STREAM", "8:12345", 1);
    const auto out = capture_stderr([] {
        setup_logging(config_of(log_level::debug, log_format::text));
        log_event(spdlog::level::err, "customer.parked", {{"customer", "M2"}});
        log_event(spdlog::level::info, "cycle.done");
        log_event(spdlog::level::debug, "window.skipped");
    });
    unsetenv("JOURNAL_STREAM");
    CHECK(out == "<3>customer.parked customer=M2\n<6>cycle.done\n<7>window.skipped\n");
}

TEST_CASE("json logs are one object per line, plain messages included") {
    const auto out = capture_stderr([] {
        setup_logging(config_of(log_level::info, log_format::json));
        log_event(spdlog::level::info, "window.loaded", {{"customer", "M1"}, {"rows", 3}});
        spdlog::error("database \"x\" gone");
    });
    INFO(out);
    const std::regex expected(
        R"(\{"ts":"[0-9T:.-]+Z","level":"info","event":"window\.loaded","customer":"M1","rows":3\}
\{"ts":"[0-9T:.-]+Z","level":"error","event":"message","msg":"database \\"x\\" gone"\}
)");
    CHECK(std::regex_match(out, expected));
    setup_logging(config_of(log_level::info, log_format::text));
}

TEST_CASE("a throttled event writes its first line, then one per period with the count held back") {
    using namespace std::chrono_literals;
    log_throttle throttle(10s);
    const log_throttle::clock::time_point start{};
    CHECK(throttle.admit(start) == 0u);
    for (auto at : {1s, 2s, 9s}) CHECK_FALSE(throttle.admit(start + at).has_value());
    CHECK(throttle.admit(start + 10s) == 3u);
    CHECK_FALSE(throttle.admit(start + 19s).has_value());
    CHECK(throttle.admit(start + 60s) == 1u);
    CHECK(throttle.admit(start + 70s) == 0u);
}
