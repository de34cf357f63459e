#include "config/config.hpp"

#include "support/fixtures.hpp"
#include "support/scoped.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

using namespace comeback;
using comeback::test::env_guard;
using comeback::test::temp_dir;
using namespace std::chrono_literals;

namespace {

// The password every error fixture reads through password_env, planted so a
// test can prove it never shows up in an error message.
constexpr const char* planted = "Pl4nted-Secret-7731";

std::string error_of(const std::filesystem::path& file) {
    try {
        load_config(file);
    } catch (const config_error& e) {
        return e.what();
    }
    FAIL("no config_error for " << file);
    return {};
}

// tests/fixtures/config/full.yaml and its secrets copied into `dir`, every
// file private to its owner: git keeps no modes but 644 and 755, and a
// password file others may read is refused.
std::filesystem::path private_full_fixture(const temp_dir& dir) {
    std::filesystem::create_directory(dir.path() / "secrets");
    for (const auto& entry : std::filesystem::directory_iterator(test::fixture_path("config/secrets")))
        dir.write("secrets/" + entry.path().filename().string(),
                  test::read_fixture("config/secrets/" + entry.path().filename().string()));
    return dir.write("full.yaml", test::read_fixture("config/full.yaml"));
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
    CHECK(cfg.vitec.base_url.text == "https://connect.maklare.vitec.net");
    CHECK(cfg.vitec.base_url.tls);
    CHECK(cfg.vitec.base_url.host == "connect.maklare.vitec.net");
    CHECK(cfg.vitec.base_url.port == 443);
    CHECK(cfg.vitec.base_url.authority == "connect.maklare.vitec.net");
    CHECK(cfg.vitec.base_url.path_prefix.empty());
    CHECK(cfg.vitec.timezone == "Europe/Stockholm");
    CHECK(cfg.vitec.username == "integrator");
    CHECK(cfg.vitec.default_password.reveal() == planted);
    CHECK(cfg.vitec.default_password_origin ==
          password_origin{password_source::env, "COMEBACK_CONFIG_TEST_PASSWORD"});
    CHECK(cfg.vitec.ca_file.empty());
    CHECK_FALSE(cfg.vitec.allow_insecure_http);
    CHECK(cfg.vitec.request_timeout == 30s);
    CHECK(cfg.vitec.max_concurrent_requests == 4);
    CHECK(cfg.vitec.max_requests_per_second == 10);
    CHECK(cfg.vitec.max_response_bytes == (std::uint64_t{1} << 30));
    CHECK(cfg.vitec.max_field_bytes == (std::uint64_t{1} << 20));
    CHECK(cfg.vitec.retry.max_attempts == 5);
    CHECK(cfg.vitec.retry.base_delay == 1s);
    CHECK(cfg.vitec.retry.max_delay == 1min);
    CHECK(cfg.vitec.retry.max_retry_after == 5min);
    CHECK(cfg.vitec.retry.auth_backoff == 1h);
    CHECK(cfg.sync.date_criteria.name() == "Occurrence");
    CHECK(cfg.sync.date_criteria.filters_occurs_at());
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
    CHECK(cfg.customers[0].password_origin == password_origin{password_source::vitec_default, ""});
    CHECK_FALSE(cfg.metrics.listen);
    CHECK(cfg.metrics.per_customer == per_customer_series::trouble);
    CHECK(cfg.log.level == log_level::info);
    CHECK(cfg.log.format == log_format::text);
    CHECK(cfg.sync.deletion_guard.enabled);
    CHECK(cfg.sync.deletion_guard.min_deleted == 20);
    CHECK(cfg.sync.deletion_guard.max_fraction == 0.5);
    CHECK(cfg.sync.deletion_guard.accept_after == 24h);
    CHECK(cfg.privacy.contact_names == contact_names::keep);
    CHECK(cfg.privacy.pseudonym_key.empty());
    CHECK(cfg.privacy.rejected_raw_retention == date::days{90});
}

TEST_CASE("a full configuration sets every key") {
    temp_dir dir;
    const auto full = private_full_fixture(dir);
    auto secrets = dir.path() / "secrets";
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    env_guard credentials("CREDENTIALS_DIRECTORY", secrets.c_str());
    config cfg = load_config(full);

    CHECK(cfg.source == full);
    CHECK(cfg.database.conninfo == "host=db.example port=5433 dbname=bi user=sync");
    CHECK(cfg.database.schema == "comeback");
    CHECK_FALSE(cfg.database.auto_migrate);
    // Trailing slashes go, so "{base_url}/Report/..." is always one slash.
    CHECK(cfg.vitec.base_url.text == "http://127.0.0.1:8080/vitec");
    CHECK_FALSE(cfg.vitec.base_url.tls);
    CHECK(cfg.vitec.base_url.host == "127.0.0.1");
    CHECK(cfg.vitec.base_url.host_is_address);
    CHECK(cfg.vitec.base_url.port == 8080);
    CHECK(cfg.vitec.base_url.authority == "127.0.0.1:8080");
    CHECK(cfg.vitec.base_url.path_prefix == "/vitec");
    CHECK(cfg.vitec.timezone == "Europe/Helsinki");
    CHECK(cfg.vitec.username == "integrator");
    // Relative paths resolve against the configuration file's folder; the newline is stripped.
    CHECK(cfg.vitec.default_password.reveal() == "file-secret-Q7");
    CHECK(cfg.vitec.default_password_origin ==
          password_origin{password_source::file, (secrets / "vitec-password").string()});
    CHECK(cfg.vitec.ca_file == (secrets / "ca.pem").string());
    CHECK_FALSE(cfg.vitec.allow_insecure_http);
    CHECK(cfg.vitec.request_timeout == 45s);
    CHECK(cfg.vitec.max_concurrent_requests == 8);
    CHECK(cfg.vitec.max_requests_per_second == 2.5);
    CHECK(cfg.vitec.max_response_bytes == 512u * 1024 * 1024);
    CHECK(cfg.vitec.max_field_bytes == 64u * 1024);
    CHECK(cfg.vitec.retry.max_attempts == 3);
    CHECK(cfg.vitec.retry.base_delay == 250ms);
    CHECK(cfg.vitec.retry.max_delay == 20s);
    CHECK(cfg.vitec.retry.max_retry_after == 2min);
    CHECK(cfg.vitec.retry.auth_backoff == 30min);
    CHECK(cfg.sync.date_criteria.name() == "Booked");
    CHECK_FALSE(cfg.sync.date_criteria.filters_occurs_at());
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
    CHECK(cfg.customers[0].password_origin.source == password_source::env);
    CHECK(cfg.customers[1].id == "S2");
    CHECK(cfg.customers[1].password.reveal() == "customer-file-secret-K2");
    CHECK(cfg.customers[1].password_origin == password_origin{password_source::credential, "customer-password"});
    CHECK(cfg.customers[2].id == "O3");
    CHECK(cfg.customers[2].password.reveal() == "customer-file-secret-K2");
    CHECK(cfg.customers[2].password_origin.source == password_source::file);
    CHECK(cfg.customers[3].id == "T4");
    CHECK(cfg.customers[3].password.reveal() == "file-secret-Q7");
    CHECK(cfg.customers[3].password_origin.source == password_source::vitec_default);
    CHECK(cfg.metrics.listen == listen_address{"::1", 9464});
    CHECK(cfg.metrics.per_customer == per_customer_series::all);
    CHECK(cfg.log.level == log_level::debug);
    CHECK(cfg.log.format == log_format::json);
    CHECK_FALSE(cfg.sync.deletion_guard.enabled);
    CHECK(cfg.sync.deletion_guard.min_deleted == 5);
    CHECK(cfg.sync.deletion_guard.max_fraction == 0.8);
    CHECK(cfg.sync.deletion_guard.accept_after == 0s);
    CHECK(cfg.privacy.contact_names == contact_names::pseudonymize);
    CHECK(cfg.privacy.pseudonym_key.reveal() == "k3y-for-pseudonyms-Z9");
    CHECK(cfg.privacy.pseudonym_key_origin ==
          password_origin{password_source::file, (secrets / "pseudonym-key").string()});
    CHECK(cfg.privacy.rejected_raw_retention == date::days{30});
    // The key is shown as where it came from, never as itself.
    const std::string text = describe(cfg);
    CHECK(text.find("k3y-for-pseudonyms-Z9") == std::string::npos);
    CHECK(text.find("pseudonym_key: <from file ") != std::string::npos);
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
        {"bad_log_level", "9:10: log.level",
         "\"verbose\" is not one of trace, debug, info, warn, error, critical, off"},
        {"bad_log_format", "9:11: log.format", "\"xml\" is not one of text, json"},
        {"bad_listen", "9:11: metrics.listen", "\"9464\" is not host:port"},
        {"bad_listen_port", "9:11: metrics.listen", "has no valid port"},
        {"bad_per_customer_series", "9:24: metrics.per_customer_series", "\"some\" is not one of trouble, all"},
        {"duplicate_key", "6:3: vitec.username", "given twice (first on line 4)"},
        {"two_password_sources", "8:19: customers[0].password_env", "give only one of password, password_file"},
        {"customer_without_password", "8:5: customers[1]", "customer M2 has no password"},
        {"unset_password_env", "5:17: vitec.password_env",
         "environment variable COMEBACK_CONFIG_TEST_UNSET_VARIABLE is not set"},
        {"section_is_scalar", "8:6: log", "expected a mapping of keys, found a single value"},
        {"pseudonymize_without_key", "9:18: privacy.contact_names", "pseudonymize needs a key"},
        {"bad_contact_names", "9:18: privacy.contact_names", "\"hide\" is not one of keep, pseudonymize, omit"},
        {"bad_max_fraction", "10:19: sync.deletion_guard.max_fraction", "\"1.5\" is more than 1"},
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
        CHECK(cfg.vitec.default_password_origin.source == password_source::env);
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
        CHECK(cfg.vitec.default_password_origin == password_origin{password_source::credential, "vitec"});
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
        CHECK(cfg.vitec.default_password_origin == password_origin{password_source::inline_text, ""});
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
    SECTION("a password file or credential others can read is refused, naming it and its mode") {
        for (mode_t mode : {0644, 0640, 0604, 0440}) {
            INFO(std::oct << mode);
            dir.write("pw", "file-secret\n", mode);
            std::string message = error_of(config_with("  password_file: pw\n"));
            CHECK(message.find("vitec.password_file: password file " + (dir.path() / "pw").string() +
                               " is readable by group or others (mode 0") != std::string::npos);
            CHECK(message.find("chmod 600") != std::string::npos);
            CHECK(message.find("file-secret") == std::string::npos);
            dir.write("vitec", "credential-secret\n", mode);
            env_guard credentials("CREDENTIALS_DIRECTORY", dir.path().c_str());
            message = error_of(config_with("  password_credential: vitec\n"));
            CHECK(message.find("credential " + (dir.path() / "vitec").string() + " is readable by group or others") !=
                  std::string::npos);
        }
        // Owner-only modes are fine, read-only included (systemd's credentials are 0400).
        for (mode_t mode : {0600, 0400}) {
            dir.write("pw", "file-secret\n", mode);
            CHECK(load_config(config_with("  password_file: pw\n")).vitec.default_password.reveal() == "file-secret");
        }
    }
    SECTION("a password file larger than 64 KiB is refused") {
        dir.write("pw", std::string(64 * 1024 + 1, 'p'), 0600);
        CHECK(error_of(config_with("  password_file: pw\n")).find("is larger than 64KiB: that is not a password") !=
              std::string::npos);
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
        CHECK(cfg.customers[0].password_origin == password_origin{password_source::env, "COMEBACK_CONFIG_TEST_OWN"});
        CHECK(cfg.customers[1].password.reveal() == "default-secret");
        CHECK(cfg.customers[1].password_origin.source == password_source::vitec_default);
    }
    SECTION("no default is needed when every customer has its own") {
        env_guard own("COMEBACK_CONFIG_TEST_OWN", "own-secret");
        config cfg = load_config(config_with("", "    password_env: COMEBACK_CONFIG_TEST_OWN\n"));
        CHECK(cfg.vitec.default_password.empty());
        CHECK(cfg.vitec.default_password_origin.source == password_source::none);
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

namespace {

// One setting tried in a minimal file: the configuration, or the error text.
struct trial {
    std::optional<config> cfg;
    std::string error;
};

// `vitec_lines` go under vitec (from line 5), `tail` after the customers (from line 8).
trial load_with(const temp_dir& dir, const std::string& vitec_lines, const std::string& tail = "") {
    auto file = dir.write("c.yaml", minimal_head + vitec_lines +
                                        "  password_env: COMEBACK_CONFIG_TEST_PASSWORD\n"
                                        "customers:\n  - id: M1\n" + tail);
    try {
        return {load_config(file), ""};
    } catch (const config_error& e) {
        return {std::nullopt, e.what()};
    }
}

// The error must start with file:line:column: key: and say `says`.
void check_refused(const temp_dir& dir, const trial& t, const std::string& where, const std::string& says) {
    INFO(t.error);
    REQUIRE_FALSE(t.cfg);
    CHECK(t.error.rfind((dir.path() / "c.yaml").string() + ":" + where + ": ", 0) == 0);
    CHECK(t.error.find(says) != std::string::npos);
}

}  // namespace

TEST_CASE("metrics.listen reads host:port, [v6]:port, :port and port 0") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    auto listen = [&](const std::string& value) { return load_with(dir, "", "metrics:\n  listen: " + value + "\n"); };

    struct good_case {
        const char* text;
        listen_address expected;
    };
    for (const good_case& c : {good_case{"127.0.0.1:9464", {"127.0.0.1", 9464}},
                               good_case{"\"[::1]:9464\"", {"::1", 9464}},
                               good_case{"\":9464\"", {"0.0.0.0", 9464}},  // every IPv4 interface
                               good_case{"localhost:0", {"localhost", 0}},  // any free port
                               good_case{"metrics.example:65535", {"metrics.example", 65535}}}) {
        INFO(c.text);
        trial t = listen(c.text);
        INFO(t.error);
        REQUIRE(t.cfg);
        REQUIRE(t.cfg->metrics.listen);
        CHECK(*t.cfg->metrics.listen == c.expected);
    }
    SECTION("an empty value means no listener") {
        trial t = listen("\"\"");
        REQUIRE(t.cfg);
        CHECK_FALSE(t.cfg->metrics.listen);
    }
    SECTION("malformed addresses name the file, line and key") {
        check_refused(dir, listen("\"9464\""), "9:11: metrics.listen", "\"9464\" is not host:port");
        check_refused(dir, listen("\"[::1]\""), "9:11: metrics.listen", "is not host:port");
        check_refused(dir, listen("\"::1:9464\""), "9:11: metrics.listen", "an IPv6 address goes in brackets");
        check_refused(dir, listen("\"host:\""), "9:11: metrics.listen", "has no valid port");
        check_refused(dir, listen("\"host:65536\""), "9:11: metrics.listen", "has no valid port");
        check_refused(dir, listen("\"user@host:9464\""), "9:11: metrics.listen", "is not host:port");
        check_refused(dir, listen("\"ho%41st:9464\""), "9:11: metrics.listen", "has an invalid host name");
        check_refused(dir, listen("\"my host:9464\""), "9:11: metrics.listen", "must not contain spaces");
        check_refused(dir, listen("[9464]"), "9:11: metrics.listen", "expected host:port, found a list");
    }
}

TEST_CASE("the listener's limits read as a count and a duration, and refuse zero") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    auto metrics = [&](const std::string& keys) { return load_with(dir, "", "metrics:\n" + keys); };
    trial defaults = metrics("  listen: \":0\"\n");
    REQUIRE(defaults.cfg);
    CHECK(defaults.cfg->metrics.max_connections == 64);
    CHECK(defaults.cfg->metrics.request_timeout == std::chrono::seconds(10));
    trial set = metrics("  max_connections: 8\n  request_timeout: 250ms\n");
    REQUIRE(set.cfg);
    CHECK(set.cfg->metrics.max_connections == 8);
    CHECK(set.cfg->metrics.request_timeout == std::chrono::milliseconds(250));
    check_refused(dir, metrics("  max_connections: 0\n"), "9:20: metrics.max_connections", "must be at least 1");
    check_refused(dir, metrics("  request_timeout: 0s\n"), "9:20: metrics.request_timeout", "must be longer than 0");
    check_refused(dir, metrics("  request_timeout: soon\n"), "9:20: metrics.request_timeout", "is not a duration");
}

TEST_CASE("vitec.base_url is split once into what the client connects to") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    auto base_url = [&](const std::string& value, const std::string& more = "") {
        return load_with(dir, "  base_url: " + value + "\n" + more);
    };

    SECTION("https with an IPv6 literal, a port and a path") {
        trial t = base_url("\"https://[::1]:8443/api/v1//\"");
        INFO(t.error);
        REQUIRE(t.cfg);
        const vitec_url& url = t.cfg->vitec.base_url;
        CHECK(url.tls);
        CHECK(url.host == "::1");  // what DNS and TLS see
        CHECK(url.host_is_address);
        CHECK(url.port == 8443);
        CHECK(url.authority == "[::1]:8443");  // what the Host header says
        CHECK(url.path_prefix == "/api/v1");
        CHECK(url.text == "https://[::1]:8443/api/v1");
    }
    SECTION("a host name gets the scheme's port and SNI") {
        trial t = base_url("HTTPS://Connect-QA.maklare.vitec.net");
        REQUIRE(t.cfg);
        CHECK(t.cfg->vitec.base_url.tls);
        CHECK(t.cfg->vitec.base_url.host == "Connect-QA.maklare.vitec.net");
        CHECK_FALSE(t.cfg->vitec.base_url.host_is_address);
        CHECK(t.cfg->vitec.base_url.port == 443);
    }
    SECTION("plain http is allowed to loopback hosts only, unless allowed outright") {
        for (const char* loopback : {"http://localhost:8080", "http://LOCALHOST", "http://127.0.0.1",
                                     "http://127.8.9.10/x", "\"http://[::1]:80\""}) {
            INFO(loopback);
            trial t = base_url(loopback);
            INFO(t.error);
            REQUIRE(t.cfg);
            CHECK_FALSE(t.cfg->vitec.base_url.tls);
        }
        CHECK(base_url("http://localhost").cfg->vitec.base_url.port == 80);
        for (const char* remote : {"http://connect.maklare.vitec.net", "http://10.0.0.1", "http://[::2]"}) {
            check_refused(dir, base_url(remote), "5:13: vitec.base_url", "sends passwords in clear over plain http");
            // The key may come before or after base_url.
            CHECK(base_url(remote, "  allow_insecure_http: true\n").cfg);
        }
    }
    SECTION("allow_insecure_http is warned about while it is on, saying whether it is used") {
        trial off = base_url("http://127.0.0.1:8080");
        REQUIRE(off.cfg);
        CHECK_FALSE(insecure_http_warning(*off.cfg));
        trial used = base_url("http://10.0.0.1:8080", "  allow_insecure_http: true\n");
        REQUIRE(used.cfg);
        REQUIRE(insecure_http_warning(*used.cfg));
        CHECK_THAT(*insecure_http_warning(*used.cfg),
                   Catch::StartsWith("vitec.allow_insecure_http is true: passwords may be sent in clear") &&
                       Catch::Contains("http://10.0.0.1:8080 is plain http: they are"));
        trial unused = base_url("https://10.0.0.1", "  allow_insecure_http: true\n");
        REQUIRE(unused.cfg);
        CHECK_THAT(*insecure_http_warning(*unused.cfg), Catch::Contains("is https now, so they are not yet"));
    }
    SECTION("malformed URLs name the file, line and key") {
        const std::pair<const char*, const char*> refused[] = {
            {"ftp://connect.maklare.vitec.net", "must start with https://"},
            {"connect.maklare.vitec.net", "must start with https://"},
            {"https://", "has no host"},
            {"https:///Report", "has no host"},
            {"\"https://host?customer=1\"", "must not have a query or fragment"},
            {"\"https://host/#top\"", "must not have a query or fragment"},
            {"https://host:0", "has an invalid port"},
            {"https://host:65536", "has an invalid port"},
            {"https://host:/", "has an invalid port"},
            {"\"https://ho%41st\"", "has an invalid host name"},
            {"\"https://[v1.x]\"", "has an invalid host"},
            // Not a loopback address with a path: the host is not a plain address or name.
            {"http://127.0.0.1.example.net", "has an invalid host"},
            {"\"https://[::1]x\"", "has an invalid host"},
            {"\"https://exa mple.net\"", "must not contain spaces"},
            {"\"\"", "must not be empty"},
        };
        for (const auto& [value, says] : refused) {
            INFO(value);
            check_refused(dir, base_url(value), "5:13: vitec.base_url", says);
        }
    }
    SECTION("a URL with a user name or password is refused without repeating it") {
        for (const char* value : {"https://sync:Pw-In-Url-99@connect.maklare.vitec.net",
                                  "https://sync:Pw-In-Url-99@bad@host", "http://Pw-In-Url-99@localhost"}) {
            trial t = base_url(value);
            check_refused(dir, t, "5:13: vitec.base_url", "must not contain a user name or password");
            CHECK(t.error.find("Pw-In-Url-99") == std::string::npos);
        }
    }
}

TEST_CASE("vitec.ca_file must be a readable file") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    std::filesystem::create_directory(dir.path() / "certs");
    check_refused(dir, load_with(dir, "  ca_file: certs\n"), "5:12: vitec.ca_file",
                  "CA file " + (dir.path() / "certs").string() + " is not a regular file");
    check_refused(dir, load_with(dir, "  ca_file: absent.pem\n"), "5:12: vitec.ca_file",
                  "cannot read CA file " + (dir.path() / "absent.pem").string());
    dir.write("ca.pem", "not checked here: the client reads it\n");
    trial t = load_with(dir, "  ca_file: ca.pem\n");
    REQUIRE(t.cfg);
    CHECK(t.cfg->vitec.ca_file == (dir.path() / "ca.pem").string());
}

TEST_CASE("log.level and log.format read into their enums, off included") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    const std::pair<const char*, log_level> levels[] = {
        {"trace", log_level::trace}, {"debug", log_level::debug}, {"info", log_level::info},
        {"warn", log_level::warn},   {"error", log_level::error}, {"critical", log_level::critical},
        {"off", log_level::off},
    };
    for (const auto& [name, level] : levels) {
        INFO(name);
        trial t = load_with(dir, "", std::string("log:\n  level: ") + name + "\n");
        REQUIRE(t.cfg);
        CHECK(t.cfg->log.level == level);
        CHECK(to_string(level) == name);
    }
    for (const char* bad : {"verbose", "warning", "INFO", "\"\""}) {
        INFO(bad);
        check_refused(dir, load_with(dir, "", std::string("log:\n  level: ") + bad + "\n"), "9:10: log.level",
                      "is not one of trace, debug, info, warn, error, critical, off");
    }
    CHECK(load_with(dir, "", "log:\n  format: json\n").cfg->log.format == log_format::json);
    CHECK(load_with(dir, "", "log:\n  format: text\n").cfg->log.format == log_format::text);
    check_refused(dir, load_with(dir, "", "log:\n  format: JSON\n"), "9:11: log.format",
                  "\"JSON\" is not one of text, json");
}

TEST_CASE("sync.date_criteria reads into the model's date criteria") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    trial occurrence = load_with(dir, "", "sync:\n  date_criteria: Occurrence\n");
    REQUIRE(occurrence.cfg);
    CHECK(occurrence.cfg->sync.date_criteria == date_criteria());
    CHECK(occurrence.cfg->sync.date_criteria.filters_occurs_at());
    trial other = load_with(dir, "", "sync:\n  date_criteria: Created\n");
    REQUIRE(other.cfg);
    CHECK(other.cfg->sync.date_criteria.name() == "Created");
    CHECK_FALSE(other.cfg->sync.date_criteria.filters_occurs_at());
    check_refused(dir, load_with(dir, "", "sync:\n  date_criteria: \"\"\n"), "9:18: sync.date_criteria",
                  "must not be empty");
}

TEST_CASE("check-config prints every value in a spelling the loader reads back") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    env_guard credentials("CREDENTIALS_DIRECTORY", (dir.path() / "secrets").c_str());
    const std::filesystem::path sources[] = {
        private_full_fixture(dir),
        test::fixture_path("config/minimal.yaml"),
        dir.write("edge.yaml", minimal_head +
                                   "  base_url: \"https://[::1]:8443/a%20b/\"\n"
                                   "  max_requests_per_second: 1234567.5\n"
                                   "  password_env: COMEBACK_CONFIG_TEST_PASSWORD\n"
                                   "customers:\n  - id: M1\n    name: 'say \"hi\"'\n"
                                   "metrics:\n  listen: \":0\"\n"
                                   "log:\n  level: \"off\"\n"),
    };
    for (const auto& source : sources) {
        INFO(source);
        const config first = load_config(source);
        const std::string printed = describe(first);
        INFO(printed);
        // Passwords print as their origin and the system CA store as a
        // placeholder: those lines go, one password source comes in.
        std::string reloadable;
        std::istringstream lines(printed);
        for (std::string line; std::getline(lines, line);) {
            if (line.find(": <") != std::string::npos) continue;
            reloadable += line + "\n";
            if (line == "vitec:") reloadable += "  password_env: COMEBACK_CONFIG_TEST_PASSWORD\n";
            if (line == "privacy:") reloadable += "  pseudonym_key_env: COMEBACK_CONFIG_TEST_PASSWORD\n";
        }
        const config second = load_config(dir.write("printed.yaml", reloadable));
        // The same effective configuration: the same description, apart from
        // the file it came from and where each password came from.
        auto without_origins = [](const config& cfg) {
            std::string text = describe(cfg);
            text.erase(0, text.find('\n') + 1);
            std::string out;
            std::istringstream in(text);
            for (std::string line; std::getline(in, line);)
                if (line.find("password: <") == std::string::npos && line.find("pseudonym_key: <") == std::string::npos)
                    out += line + "\n";
            return out;
        };
        CHECK(without_origins(second) == without_origins(first));
        CHECK(second.vitec.base_url == first.vitec.base_url);
        CHECK(second.metrics.listen == first.metrics.listen);
        CHECK(second.log.level == first.log.level);
        CHECK(second.sync.date_criteria == first.sync.date_criteria);
    }
}

TEST_CASE("database.pool_size follows max_concurrent_requests up to 10, unless set; at least 2") {
    temp_dir dir;
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", planted);
    auto with = [&](const std::string& database_lines, const std::string& vitec_lines) -> trial {
        auto file = dir.write("c.yaml", "database:\n  conninfo: \"\"\n" + database_lines +
                                            "vitec:\n  username: integrator\n" + vitec_lines +
                                            "  password_env: COMEBACK_CONFIG_TEST_PASSWORD\n"
                                            "customers:\n  - id: M1\n");
        try {
            return {load_config(file), ""};
        } catch (const config_error& e) {
            return {std::nullopt, e.what()};
        }
    };
    auto pool = [&](const std::string& database_lines, const std::string& vitec_lines) {
        trial t = with(database_lines, vitec_lines);
        INFO(t.error);
        REQUIRE(t.cfg);
        return t.cfg->database.pool_size;
    };
    CHECK(pool("", "") == 6);  // max_concurrent_requests 4
    CHECK(pool("", "  max_concurrent_requests: 1\n") == 3);
    CHECK(pool("", "  max_concurrent_requests: 8\n") == 10);
    CHECK(pool("", "  max_concurrent_requests: 64\n") == 10);
    CHECK(pool("  pool_size: 40\n", "  max_concurrent_requests: 64\n") == 40);
    CHECK(pool("  pool_size: 2\n", "  max_concurrent_requests: 64\n") == 2);
    check_refused(dir, with("  pool_size: 1\n", ""), "3:14: database.pool_size", "must be at least 2");
    // Whether the file chose it (a backfill sizes only a defaulted pool).
    CHECK_FALSE(with("", "").cfg->database.pool_size_set);
    CHECK(with("  pool_size: 6\n", "").cfg->database.pool_size_set);
}
