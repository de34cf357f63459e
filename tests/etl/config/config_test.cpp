#include "config/config.hpp"

#include "support/fixtures.hpp"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

// The password every error fixture reads through password_env, planted so a
// test can prove it never shows up in an error message.
constexpr const char* planted = "Pl4nted-Secret-7731";

// Sets an environment variable for one scope, restoring what was there before.
class env_guard {
public:
    env_guard(std::string name, const char* value) : name_(std::move(name)) {
        if (const char* old = std::getenv(name_.c_str())) old_ = old;
        if (value) ::setenv(name_.c_str(), value, 1);
        else ::unsetenv(name_.c_str());
    }
    ~env_guard() {
        if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
        else ::unsetenv(name_.c_str());
    }
    env_guard(const env_guard&) = delete;
    env_guard& operator=(const env_guard&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

// A private directory removed with everything in it at the end of the scope.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "comeback-config-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    // Writes `text` to `name` with exactly `mode`, whatever the umask.
    std::filesystem::path write(const std::string& name, const std::string& text, mode_t mode = 0600) const {
        auto file = path_ / name;
        std::ofstream(file, std::ios::binary) << text;
        ::chmod(file.c_str(), mode);
        return file;
    }

    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

std::string error_of(const std::filesystem::path& file) {
    try {
        load_config(file);
    } catch (const config_error& e) {
        return e.what();
    }
    FAIL("no config_error for " << file);
    return {};
}

const std::string minimal_head =
    "database:\n"
    "  conninfo: \"\"\n"
    "vitec:\n"
    "  username: integrator\n";

}  // namespace

TEST_CASE("a minimal configuration takes every default") {
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    config cfg = load_config(test::fixture_path("config/minimal.yaml"));

    CHECK(cfg.database.conninfo.empty());
    CHECK(cfg.database.schema == "vitec");
    CHECK(cfg.database.auto_migrate);
    CHECK(cfg.vitec.base_url == "https://connect.maklare.vitec.net");
    CHECK(cfg.vitec.timezone == "Europe/Stockholm");
    CHECK(cfg.vitec.username == "integrator");
    CHECK(cfg.vitec.default_password.reveal() == planted);
    CHECK(cfg.vitec.default_password_origin.kind == "env");
    CHECK(cfg.vitec.default_password_origin.name == "COMEBACK_CONFIG_TEST_PASSWORD");
    CHECK(cfg.vitec.ca_file.empty());
    CHECK_FALSE(cfg.vitec.allow_insecure_http);
    CHECK(cfg.vitec.request_timeout == 30s);
    CHECK(cfg.vitec.max_concurrent_requests == 4);
    CHECK(cfg.vitec.max_requests_per_second == 10);
    CHECK(cfg.vitec.max_response_bytes == (std::uint64_t{1} << 30));
    CHECK(cfg.vitec.retry.max_attempts == 5);
    CHECK(cfg.vitec.retry.base_delay == 1s);
    CHECK(cfg.vitec.retry.max_delay == 1min);
    CHECK(cfg.vitec.retry.max_retry_after == 5min);
    CHECK(cfg.vitec.retry.auth_backoff == 1h);
    CHECK(cfg.sync.date_criteria == "Occurrence");
    CHECK(cfg.sync.window == date::days{7});
    CHECK(cfg.sync.lookback == date::days{30});
    CHECK(cfg.sync.horizon == date::days{365});
    CHECK(cfg.sync.poll_interval == 5min);
    CHECK(cfg.sync.history_start == date::year{2020} / 1 / 1);
    REQUIRE(cfg.sync.freshness.size() == 3);
    CHECK(cfg.sync.freshness[0].within == date::days{14});
    CHECK(cfg.sync.freshness[0].every == 5min);
    CHECK(cfg.sync.freshness[1].within == date::days{90});
    CHECK(cfg.sync.freshness[1].every == 1h);
    CHECK(cfg.sync.freshness[2].within == date::days{400});
    CHECK(cfg.sync.freshness[2].every == date::days{1});
    CHECK(cfg.sync.shutdown_grace == 30s);
    REQUIRE(cfg.customers.size() == 1);
    CHECK(cfg.customers[0].id == "M1");
    CHECK(cfg.customers[0].name.empty());
    CHECK(cfg.customers[0].password.reveal() == planted);
    CHECK(cfg.customers[0].password_origin.kind == "default");
    CHECK(cfg.metrics.listen.empty());
    CHECK(cfg.log.level == "info");
    CHECK(cfg.log.format == "text");
}

TEST_CASE("a full configuration sets every key") {
    auto secrets = test::fixture_path("config/secrets");
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    env_guard credentials("CREDENTIALS_DIRECTORY", secrets.c_str());
    config cfg = load_config(test::fixture_path("config/full.yaml"));

    CHECK(cfg.source == test::fixture_path("config/full.yaml"));
    CHECK(cfg.database.conninfo == "host=db.example port=5433 dbname=bi user=sync");
    CHECK(cfg.database.schema == "comeback");
    CHECK_FALSE(cfg.database.auto_migrate);
    // Trailing slashes go, so "{base_url}/Report/..." is always one slash.
    CHECK(cfg.vitec.base_url == "http://127.0.0.1:8080/vitec");
    CHECK(cfg.vitec.timezone == "Europe/Helsinki");
    CHECK(cfg.vitec.username == "integrator");
    // Relative paths resolve against the configuration file's folder; the newline is stripped.
    CHECK(cfg.vitec.default_password.reveal() == "file-secret-Q7");
    CHECK(cfg.vitec.default_password_origin.kind == "file");
    CHECK(cfg.vitec.default_password_origin.name == (secrets / "vitec-password").string());
    CHECK(cfg.vitec.ca_file == (secrets / "ca.pem").string());
    CHECK_FALSE(cfg.vitec.allow_insecure_http);
    CHECK(cfg.vitec.request_timeout == 45s);
    CHECK(cfg.vitec.max_concurrent_requests == 8);
    CHECK(cfg.vitec.max_requests_per_second == 2.5);
    CHECK(cfg.vitec.max_response_bytes == 512u * 1024 * 1024);
    CHECK(cfg.vitec.retry.max_attempts == 3);
    CHECK(cfg.vitec.retry.base_delay == 250ms);
    CHECK(cfg.vitec.retry.max_delay == 20s);
    CHECK(cfg.vitec.retry.max_retry_after == 2min);
    CHECK(cfg.vitec.retry.auth_backoff == 30min);
    CHECK(cfg.sync.date_criteria == "Booked");
    CHECK(cfg.sync.window == date::days{14});
    CHECK(cfg.sync.lookback == date::days{60});
    CHECK(cfg.sync.horizon == date::days{0});
    CHECK(cfg.sync.poll_interval == 2min);
    CHECK(cfg.sync.history_start == date::year{2018} / 3 / 1);
    // The file lists the far tier first; the loader orders them nearest first.
    REQUIRE(cfg.sync.freshness.size() == 2);
    CHECK(cfg.sync.freshness[0].within == date::days{7});
    CHECK(cfg.sync.freshness[0].every == 2min);
    CHECK(cfg.sync.freshness[1].within == date::days{120});
    CHECK(cfg.sync.freshness[1].every == 6h);
    CHECK(cfg.sync.shutdown_grace == 0s);
    REQUIRE(cfg.customers.size() == 4);
    CHECK(cfg.customers[0].id == "M1");
    CHECK(cfg.customers[0].name == "Mäklarbyrån Syd");
    CHECK(cfg.customers[0].password.reveal() == planted);
    CHECK(cfg.customers[0].password_origin.kind == "env");
    CHECK(cfg.customers[1].id == "S2");
    CHECK(cfg.customers[1].password.reveal() == "customer-file-secret-K2");
    CHECK(cfg.customers[1].password_origin.kind == "credential");
    CHECK(cfg.customers[1].password_origin.name == "customer-password");
    CHECK(cfg.customers[2].id == "O3");
    CHECK(cfg.customers[2].password.reveal() == "customer-file-secret-K2");
    CHECK(cfg.customers[2].password_origin.kind == "file");
    CHECK(cfg.customers[3].id == "T4");
    CHECK(cfg.customers[3].password.reveal() == "file-secret-Q7");
    CHECK(cfg.customers[3].password_origin.kind == "default");
    CHECK(cfg.metrics.listen == "[::1]:9464");
    CHECK(cfg.log.level == "debug");
    CHECK(cfg.log.format == "json");
}

TEST_CASE("the example configuration loads and documents every key it sets") {
    temp_dir credentials;
    credentials.write("vitec-password", "example-default-secret\n");
    env_guard directory("CREDENTIALS_DIRECTORY", credentials.path().c_str());
    env_guard password("VITEC_PASSWORD_M12345", "example-customer-secret");
    auto example = std::filesystem::path(COMEBACK_SOURCE_DIR) / "config/comeback-sync.example.yaml";

    config cfg = load_config(example);
    CHECK(cfg.vitec.default_password_origin.kind == "credential");
    CHECK(cfg.vitec.default_password.reveal() == "example-default-secret");
    REQUIRE(cfg.customers.size() == 2);
    CHECK(cfg.customers[0].password.reveal() == "example-customer-secret");
    CHECK(cfg.customers[1].password_origin.kind == "default");

    // The example's values are the defaults it claims: loading the minimal
    // configuration must give the same effective values, key by key.
    env_guard minimal_password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    config defaults = load_config(test::fixture_path("config/minimal.yaml"));
    CHECK(cfg.database.schema == defaults.database.schema);
    CHECK(cfg.database.auto_migrate == defaults.database.auto_migrate);
    CHECK(cfg.vitec.base_url == defaults.vitec.base_url);
    CHECK(cfg.vitec.timezone == defaults.vitec.timezone);
    CHECK(cfg.vitec.allow_insecure_http == defaults.vitec.allow_insecure_http);
    CHECK(cfg.vitec.request_timeout == defaults.vitec.request_timeout);
    CHECK(cfg.vitec.max_concurrent_requests == defaults.vitec.max_concurrent_requests);
    CHECK(cfg.vitec.max_requests_per_second == defaults.vitec.max_requests_per_second);
    CHECK(cfg.vitec.max_response_bytes == defaults.vitec.max_response_bytes);
    CHECK(cfg.vitec.retry.max_attempts == defaults.vitec.retry.max_attempts);
    CHECK(cfg.vitec.retry.base_delay == defaults.vitec.retry.base_delay);
    CHECK(cfg.vitec.retry.max_delay == defaults.vitec.retry.max_delay);
    CHECK(cfg.vitec.retry.max_retry_after == defaults.vitec.retry.max_retry_after);
    CHECK(cfg.vitec.retry.auth_backoff == defaults.vitec.retry.auth_backoff);
    CHECK(cfg.sync.date_criteria == defaults.sync.date_criteria);
    CHECK(cfg.sync.window == defaults.sync.window);
    CHECK(cfg.sync.lookback == defaults.sync.lookback);
    CHECK(cfg.sync.horizon == defaults.sync.horizon);
    CHECK(cfg.sync.poll_interval == defaults.sync.poll_interval);
    CHECK(cfg.sync.history_start == defaults.sync.history_start);
    REQUIRE(cfg.sync.freshness.size() == defaults.sync.freshness.size());
    for (std::size_t i = 0; i < cfg.sync.freshness.size(); ++i) {
        CHECK(cfg.sync.freshness[i].within == defaults.sync.freshness[i].within);
        CHECK(cfg.sync.freshness[i].every == defaults.sync.freshness[i].every);
    }
    CHECK(cfg.sync.shutdown_grace == defaults.sync.shutdown_grace);
    CHECK(cfg.log.level == defaults.log.level);
    CHECK(cfg.log.format == defaults.log.format);

    // Every key the example sets has a row in docs/configuration.md.
    std::ifstream page_file(std::filesystem::path(COMEBACK_SOURCE_DIR) / "docs" / "configuration.md");
    REQUIRE(page_file);
    const std::string section((std::istreambuf_iterator<char>(page_file)), std::istreambuf_iterator<char>());
    std::set<std::string> keys;
    auto collect = [&keys](auto& self, const YAML::Node& node, const std::string& prefix) -> void {
        if (node.IsMap()) {
            for (auto it = node.begin(); it != node.end(); ++it) {
                std::string key = prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar();
                keys.insert(key);
                self(self, it->second, key);
            }
        } else if (node.IsSequence()) {
            for (const auto& item : node) self(self, item, prefix + "[]");
        }
    };
    collect(collect, YAML::LoadFile(example.string()), "");
    for (const std::string& key : keys) {
        INFO("docs/configuration.md lacks `" << key << "`");
        CHECK(section.find("`" + key + "`") != std::string::npos);
    }
    for (const char* key : {"password", "password_file", "password_env", "password_credential", "ca_file"}) {
        INFO("docs/configuration.md lacks `vitec." << key << "`");
        CHECK(section.find(std::string("`vitec.") + key + "`") != std::string::npos);
    }
}

TEST_CASE("each configuration error names the file, line, column and key") {
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    env_guard unset("COMEBACK_CONFIG_TEST_UNSET_VARIABLE", nullptr);

    struct expectation {
        const char* file;
        const char* where;  // line:column: key
        const char* says;
    };
    const expectation cases[] = {
        {"unknown_key", "9:3: sync.windw", "unknown key (known here: date_criteria, window,"},
        {"bad_duration", "9:11: sync.window", "\"7x\" is not a duration (use 30s, 5m, 2h, 7d)"},
        {"window_not_whole_days", "9:11: sync.window", "\"36h\" is not a whole number of days"},
        {"zero_window", "9:11: sync.window", "must be longer than 0"},
        {"poll_interval_fraction", "9:18: sync.poll_interval", "\"1500ms\" is not a whole number of seconds"},
        {"bad_history_start", "9:18: sync.history_start", "\"2021-02-30\" is not a calendar date"},
        {"freshness_without_every", "12:7: sync.freshness[1].every", "required key is missing"},
        {"wrong_type", "6:28: vitec.max_concurrent_requests", "expected a whole number, found a list"},
        {"zero_concurrency", "6:28: vitec.max_concurrent_requests", "must be at least 1"},
        {"bad_size", "6:23: vitec.max_response_bytes", "\"1Gb\" is not a size"},
        {"bad_boolean", "3:17: database.auto_migrate", "\"maybe\" is not a boolean (use true or false)"},
        {"missing_username", "3:1: vitec.username", "required key is missing"},
        {"missing_database", "1:1: database", "required key is missing"},
        {"missing_conninfo", "1:1: database.conninfo", "required key is missing"},
        {"no_customers", "6:12: customers", "needs at least one customer"},
        {"customer_without_id", "8:5: customers[1].id", "required key is missing"},
        {"duplicate_customer", "9:9: customers[2].id", "\"M1\" is already used by customers[0] (line 7)"},
        {"bad_timezone", "5:13: vitec.timezone", "\"Europe/Stockhom\" is not a known time zone"},
        {"bad_base_url", "4:13: vitec.base_url", "must start with https://"},
        {"insecure_http", "4:13: vitec.base_url", "vitec.allow_insecure_http: true"},
        {"bad_log_level", "9:10: log.level", "\"verbose\" is not one of trace, debug, info, warn, error, critical"},
        {"bad_log_format", "9:11: log.format", "\"xml\" is not one of text, json"},
        {"bad_listen", "9:11: metrics.listen", "\"9464\" is not host:port"},
        {"bad_listen_port", "9:11: metrics.listen", "has no valid port"},
        {"duplicate_key", "6:3: vitec.username", "given twice (first on line 4)"},
        {"two_password_sources", "8:19: customers[0].password_env", "give only one of password, password_file"},
        {"customer_without_password", "8:5: customers[1]", "customer M2 has no password"},
        {"unset_password_env", "5:17: vitec.password_env",
         "environment variable COMEBACK_CONFIG_TEST_UNSET_VARIABLE is not set"},
        {"section_is_scalar", "8:6: log", "expected a mapping of keys, found a single value"},
    };
    for (const expectation& c : cases) {
        auto file = test::fixture_path(std::string("config/errors/") + c.file + ".yaml");
        std::string message = error_of(file);
        INFO(message);
        CHECK(message.rfind(file.string() + ":" + c.where + ": ", 0) == 0);
        CHECK(message.find(c.says) != std::string::npos);
        CHECK(message.find(planted) == std::string::npos);
    }

    SECTION("invalid YAML points at the parser's position") {
        std::string message = error_of(test::fixture_path("config/errors/invalid_yaml.yaml"));
        CHECK(message.find("invalid_yaml.yaml:5:3: not valid YAML") != std::string::npos);
    }
    SECTION("a missing password file is named by its resolved path") {
        std::string message = error_of(test::fixture_path("config/errors/missing_password_file.yaml"));
        auto resolved = test::fixture_path("config/secrets/no-such-password").lexically_normal();
        CHECK(message.find("missing_password_file.yaml:5:18: vitec.password_file: cannot read password file " +
                           resolved.string()) != std::string::npos);
    }
    SECTION("a missing or empty file says so") {
        temp_dir dir;
        CHECK(error_of(dir.path() / "absent.yaml").find("absent.yaml: cannot read the configuration") !=
              std::string::npos);
        CHECK(error_of(dir.write("empty.yaml", "# nothing\n")).find("the configuration is empty") !=
              std::string::npos);
    }
}

TEST_CASE("durations read as milliseconds") {
    CHECK(parse_duration("250ms") == 250ms);
    CHECK(parse_duration("30s") == 30s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("2h") == 2h);
    CHECK(parse_duration("7d") == std::chrono::hours{7 * 24});
    CHECK(parse_duration("0s") == 0ms);
    CHECK(parse_duration(" 10 s ") == 10s);
    for (const char* bad : {"", "s", "7", "7x", "7 days", "1.5h", "-5m", "1h30m", "5M", "99999999999999999999d",
                            "9999999999999999d"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_duration(bad), std::invalid_argument);
    }
}

TEST_CASE("sizes read as bytes, binary and decimal units") {
    CHECK(parse_size("100") == 100);
    CHECK(parse_size("100B") == 100);
    CHECK(parse_size("64KiB") == 64 * 1024);
    CHECK(parse_size("512MiB") == 512ull * 1024 * 1024);
    CHECK(parse_size("1GiB") == 1ull << 30);
    CHECK(parse_size("2TiB") == 2ull << 40);
    CHECK(parse_size("10kB") == 10'000);
    CHECK(parse_size("10MB") == 10'000'000);
    CHECK(parse_size("3GB") == 3'000'000'000ull);
    CHECK(parse_size("1TB") == 1'000'000'000'000ull);
    for (const char* bad : {"", "MiB", "1Gb", "1gib", "1KB", "1.5GiB", "-1", "20000000TiB"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_size(bad), std::invalid_argument);
    }
}

TEST_CASE("durations and sizes print in their shortest exact spelling") {
    CHECK(format_duration(300000ms) == "5m");
    CHECK(format_duration(90s) == "90s");
    CHECK(format_duration(250ms) == "250ms");
    CHECK(format_duration(std::chrono::hours{48}) == "2d");
    CHECK(format_duration(0ms) == "0s");
    CHECK(format_size(1ull << 30) == "1GiB");
    CHECK(format_size(1536 * 1024) == "1536KiB");
    CHECK(format_size(10'000'000) == "10000000B");
    for (const char* text : {"250ms", "45s", "2m", "36h", "7d"}) CHECK(format_duration(parse_duration(text)) == text);
    for (const char* text : {"64KiB", "512MiB", "1GiB", "100B"}) CHECK(format_size(parse_size(text)) == text);
}

TEST_CASE("the freshness defaults follow poll_interval") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    auto file = dir.write("c.yaml", minimal_head +
                                        "  password_env: COMEBACK_CONFIG_TEST_PASSWORD\n"
                                        "sync:\n  poll_interval: 2m\ncustomers:\n  - id: M1\n");
    config cfg = load_config(file);
    REQUIRE(cfg.sync.freshness.size() == 3);
    CHECK(cfg.sync.freshness[0].every == 2min);
    CHECK(cfg.sync.freshness[1].every == 1h);
}

TEST_CASE("checks across keys name the key that breaks them") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    const std::string head = minimal_head + "  password_env: COMEBACK_CONFIG_TEST_PASSWORD\n";
    const std::string tail = "customers:\n  - id: M1\n";

    auto retry = dir.write("retry.yaml", head + "  retry:\n    base_delay: 2m\n    max_delay: 1m\n" + tail);
    CHECK(error_of(retry).find(retry.string() + ":8:16: vitec.retry.max_delay: retry.max_delay (1m) is shorter "
                               "than retry.base_delay (2m)") == 0);

    auto tiers = dir.write("tiers.yaml", head + tail +
                                             "sync:\n  freshness:\n    - {within: 7d, every: 1m}\n"
                                             "    - {within: 7d, every: 1h}\n");
    CHECK(error_of(tiers).find(tiers.string() + ":11:16: sync.freshness[1].within: the same within as "
                               "sync.freshness[0]") == 0);
}

TEST_CASE("passwords come from a file, a variable, a credential or a private file") {
    temp_dir dir;
    env_guard unset_credentials("CREDENTIALS_DIRECTORY", nullptr);
    auto config_with = [&](const std::string& vitec_lines, const std::string& customer_lines = "",
                           mode_t mode = 0600) {
        return dir.write("c.yaml", minimal_head + vitec_lines + "customers:\n  - id: M1\n" + customer_lines, mode);
    };

    SECTION("password_file keeps everything but trailing line breaks") {
        dir.write("pw", "  spaced secret \r\n\n", 0600);
        config cfg = load_config(config_with("  password_file: pw\n"));
        CHECK(cfg.vitec.default_password.reveal() == "  spaced secret ");
        CHECK(cfg.vitec.default_password_origin.name == (dir.path() / "pw").string());
        CHECK(cfg.customers[0].password.reveal() == "  spaced secret ");
    }
    SECTION("an empty password file is an error naming the file") {
        dir.write("pw", "\n", 0600);
        std::string message = error_of(config_with("  password_file: pw\n"));
        CHECK(message.find("password file " + (dir.path() / "pw").string() + " is empty") != std::string::npos);
    }
    SECTION("password_env reads the variable") {
        env_guard variable("COMEBACK_CONFIG_TEST_ENV", "from-env");
        config cfg = load_config(config_with("  password_env: COMEBACK_CONFIG_TEST_ENV\n"));
        CHECK(cfg.customers[0].password.reveal() == "from-env");
        CHECK(cfg.vitec.default_password_origin.kind == "env");
    }
    SECTION("an empty variable is an error naming the variable") {
        env_guard variable("COMEBACK_CONFIG_TEST_ENV", "");
        CHECK(error_of(config_with("  password_env: COMEBACK_CONFIG_TEST_ENV\n"))
                  .find("environment variable COMEBACK_CONFIG_TEST_ENV is empty") != std::string::npos);
    }
    SECTION("password_credential reads $CREDENTIALS_DIRECTORY/<name>") {
        dir.write("vitec", "from-credential\n", 0600);
        env_guard credentials("CREDENTIALS_DIRECTORY", dir.path().c_str());
        config cfg = load_config(config_with("  password_credential: vitec\n"));
        CHECK(cfg.customers[0].password.reveal() == "from-credential");
        CHECK(cfg.vitec.default_password_origin.kind == "credential");
        CHECK(cfg.vitec.default_password_origin.name == "vitec");
    }
    SECTION("a credential without CREDENTIALS_DIRECTORY is an error naming the credential") {
        std::string message = error_of(config_with("  password_credential: vitec\n"));
        CHECK(message.find("vitec.password_credential: credential vitec needs CREDENTIALS_DIRECTORY") !=
              std::string::npos);
    }
    SECTION("a credential name cannot leave the credentials directory") {
        env_guard credentials("CREDENTIALS_DIRECTORY", dir.path().c_str());
        CHECK(error_of(config_with("  password_credential: ../etc/shadow\n")).find("is not a credential name") !=
              std::string::npos);
    }
    SECTION("an inline password in a 0600 file is accepted") {
        config cfg = load_config(config_with("  password: inline-secret\n"));
        CHECK(cfg.customers[0].password.reveal() == "inline-secret");
        CHECK(cfg.vitec.default_password_origin.kind == "inline");
    }
    SECTION("an inline password in a file others can read is refused") {
        for (mode_t mode : {0644, 0640, 0604}) {
            auto file = config_with("  password: inline-secret\n", "", mode);
            std::string message = error_of(file);
            INFO(message);
            CHECK(message.find(file.string() + ":5:13: vitec.password: an inline password is refused") == 0);
            CHECK(message.find("readable by group or others") != std::string::npos);
            CHECK(message.find("inline-secret") == std::string::npos);
        }
    }
    SECTION("a customer's own password overrides the default") {
        env_guard variable("COMEBACK_CONFIG_TEST_ENV", "default-secret");
        env_guard own("COMEBACK_CONFIG_TEST_OWN", "own-secret");
        config cfg = load_config(dir.write("c.yaml", minimal_head +
                                                         "  password_env: COMEBACK_CONFIG_TEST_ENV\n"
                                                         "customers:\n"
                                                         "  - id: M1\n"
                                                         "    password_env: COMEBACK_CONFIG_TEST_OWN\n"
                                                         "  - id: M2\n"));
        CHECK(cfg.customers[0].password.reveal() == "own-secret");
        CHECK(cfg.customers[0].password_origin.kind == "env");
        CHECK(cfg.customers[0].password_origin.name == "COMEBACK_CONFIG_TEST_OWN");
        CHECK(cfg.customers[1].password.reveal() == "default-secret");
        CHECK(cfg.customers[1].password_origin.kind == "default");
    }
    SECTION("no default is needed when every customer has its own") {
        env_guard own("COMEBACK_CONFIG_TEST_OWN", "own-secret");
        config cfg = load_config(config_with("", "    password_env: COMEBACK_CONFIG_TEST_OWN\n"));
        CHECK(cfg.vitec.default_password.empty());
        CHECK(cfg.vitec.default_password_origin.kind.empty());
        CHECK(cfg.customers[0].password.reveal() == "own-secret");
    }
}

TEST_CASE("passwords never appear in describe or in error messages") {
    temp_dir dir;
    const std::string in_file = "Fi1e-Secret-4410";
    const std::string in_env = "Env-Secret-5520";
    const std::string in_credential = "Cred-Secret-6630";
    const std::string inline_secret = "Inline-Secret-7740";
    const std::string in_conninfo = "Conn-Secret-8850";
    const std::string all[] = {in_file, in_env, in_credential, inline_secret, in_conninfo};
    auto contains_secret = [&](const std::string& text) {
        for (const std::string& s : all)
            if (text.find(s) != std::string::npos) return true;
        return false;
    };

    dir.write("pw", in_file + "\n");
    dir.write("cred", in_credential);
    env_guard variable("COMEBACK_CONFIG_TEST_ENV", in_env.c_str());
    env_guard credentials("CREDENTIALS_DIRECTORY", dir.path().c_str());
    const std::string customers =
        "customers:\n"
        "  - id: M1\n    password_file: pw\n"
        "  - id: M2\n    password_env: COMEBACK_CONFIG_TEST_ENV\n"
        "  - id: M3\n    password_credential: cred\n"
        "  - id: M4\n";
    const std::string body = "database:\n  conninfo: \"postgresql://sync:" + in_conninfo +
                             "@db/bi\"\nvitec:\n  username: integrator\n  password: " + inline_secret + "\n" +
                             customers;

    SECTION("describe shows where each password came from, never the password") {
        config cfg = load_config(dir.write("c.yaml", body, 0600));
        std::string text = describe(cfg);
        INFO(text);
        CHECK_FALSE(contains_secret(text));
        CHECK(text.find("postgresql://sync:***@db/bi") != std::string::npos);
        CHECK(text.find("password: <inline in the configuration file>") != std::string::npos);
        CHECK(text.find("password: <from file " + (dir.path() / "pw").string() + ">") != std::string::npos);
        CHECK(text.find("password: <from environment variable COMEBACK_CONFIG_TEST_ENV>") != std::string::npos);
        CHECK(text.find("password: <from systemd credential cred>") != std::string::npos);
        CHECK(text.find("password: <the vitec default>") != std::string::npos);
        // Every section and value is there.
        for (const char* line : {"schema: vitec", "timezone: Europe/Stockholm", "max_response_bytes: 1GiB",
                                 "max_attempts: 5", "window: 7d", "- {within: 14d, every: 5m}",
                                 "history_start: 2020-01-01", "listen: <none: no listener>", "format: text"}) {
            CHECK(text.find(line) != std::string::npos);
        }
    }
    SECTION("errors raised after the passwords were read do not carry them") {
        const std::string broken[] = {
            body + "log:\n  level: loud\n",
            body + "sync:\n  window: 0d\n",
            body + "  - id: M1\n",
            body + "metrics:\n  pasword: " + in_env + "\n",
        };
        for (const std::string& text : broken) {
            std::string message = error_of(dir.write("c.yaml", text, 0600));
            INFO(message);
            CHECK_FALSE(contains_secret(message));
        }
    }
    SECTION("a password in the wrong place or of the wrong type is not echoed") {
        const std::string broken[] = {
            "database:\n  conninfo: \"\"\nvitec:\n  username: integrator\n  pasword: " + inline_secret +
                "\n" + customers,
            "database:\n  conninfo: \"\"\nvitec:\n  username: integrator\n  password: [" + inline_secret +
                "]\n" + customers,
        };
        for (const std::string& text : broken) {
            std::string message = error_of(dir.write("c.yaml", text, 0600));
            INFO(message);
            CHECK_FALSE(contains_secret(message));
        }
    }
    SECTION("a world-readable file with passwords is refused without showing them") {
        std::string message = error_of(dir.write("c.yaml", body, 0644));
        INFO(message);
        CHECK(message.find("database.conninfo: a password inside the conninfo is refused") != std::string::npos);
        CHECK_FALSE(contains_secret(message));

        std::string without_conninfo = body;
        without_conninfo.replace(without_conninfo.find("sync:" + in_conninfo + "@"), 6 + in_conninfo.size(),
                                 "sync@");
        message = error_of(dir.write("c.yaml", without_conninfo, 0644));
        CHECK(message.find("vitec.password: an inline password is refused") != std::string::npos);
        CHECK_FALSE(contains_secret(message));
    }
}

TEST_CASE("conninfo passwords are masked in both libpq spellings") {
    CHECK(mask_conninfo("postgresql://u:secret@h/db") == "postgresql://u:***@h/db");
    CHECK(mask_conninfo("postgres://u:se@cr/et@h:5432/db?sslmode=require") ==
          "postgres://u:***@h:5432/db?sslmode=require");
    CHECK(mask_conninfo("postgresql://u@h/db?password=secret&sslmode=require") ==
          "postgresql://u@h/db?password=***&sslmode=require");
    CHECK(mask_conninfo("postgresql://u@h/db") == "postgresql://u@h/db");
    CHECK(mask_conninfo("host=h password=secret dbname=db") == "host=h password=*** dbname=db");
    CHECK(mask_conninfo("host=h password = 'se cr\\'et' dbname=db") == "host=h password = *** dbname=db");
    CHECK(mask_conninfo("sslpassword=x password='' user=u") == "sslpassword=*** password=*** user=u");
    CHECK(mask_conninfo("host=h dbname=password") == "host=h dbname=password");
    CHECK(mask_conninfo("") == "");
}
