#pragma once
// The configuration, loaded once from YAML into plain structs of typed values
// (config/values.hpp). Classes take these structs, never YAML nodes or the
// settings' text. Every key is documented in docs/configuration.md and
// config/comeback-sync.example.yaml; a test keeps both in step with
// known_key_paths().

#include "config/secret.hpp"
#include "config/values.hpp"
#include "model/date_criteria.hpp"
#include "model/deletion_guard.hpp"
#include "model/privacy.hpp"

#include <date/date.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

// A configuration problem. what() names the file, line and column and the key.
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The limits every database session the daemon opens gets (daemon/sync/
// database.hpp turns them into libpq parameters and session settings). A key
// the conninfo sets itself wins over these.
struct database_timeouts {
    std::chrono::seconds connect_timeout{10};      // libpq connect_timeout: opening a session
    std::chrono::milliseconds statement_timeout{300000};  // one statement on the server
    std::chrono::milliseconds lock_timeout{60000};        // one lock wait, advisory locks included
    std::chrono::milliseconds idle_in_transaction_timeout{300000};  // a transaction left open idle
    std::chrono::milliseconds tcp_user_timeout{30000};  // unacknowledged data on the socket
    std::chrono::seconds keepalives_idle{30};      // TCP keepalives, both ends of the socket
    std::chrono::seconds keepalives_interval{10};
    unsigned keepalives_count = 3;
};

struct database_config {
    std::string conninfo;  // libpq URI or key=value; PG* environment variables fill gaps
    std::string schema = "vitec";
    bool auto_migrate = true;
    database_timeouts timeouts{};
    // How often `run` checks that the database answers (/healthz, database_up).
    std::chrono::milliseconds probe_interval{10000};
    // How long a window waits for an unreachable database to answer again
    // before it counts as failed.
    std::chrono::milliseconds outage_grace{300000};
    // Connections for loads, fetch tickets and ledger reads, each with a thread
    // of its own. The loader fills in default_pool_size() when the key is absent.
    unsigned pool_size = 0;
    // The file set pool_size: nothing may size the pool otherwise (a backfill
    // sizes a defaulted one to a database on this machine, backfill_pool_size).
    bool pool_size_set = false;
};

// database.pool_size when the file leaves it out: one connection a request in
// flight, so every window can load while the next is fetched, but no more than
// 8 loads at once (a database server's CPU does more with a few busy sessions
// than with many waiting for it), and 2 for tickets and ledger reads.
unsigned default_pool_size(unsigned max_concurrent_requests);

struct retry_config {
    unsigned max_attempts = 5;                       // per window, first attempt included
    std::chrono::milliseconds base_delay{1000};      // exponential back-off, full jitter
    std::chrono::milliseconds max_delay{60000};
    std::chrono::milliseconds max_retry_after{300000};  // cap on a server's Retry-After
    std::chrono::milliseconds auth_backoff{3600000};    // customer parked after 401/403
};

struct vitec_config {
    vitec_url base_url = parse_vitec_url(default_vitec_base_url, false);
    std::string timezone = "Europe/Stockholm";
    std::string username;
    secret default_password;
    password_origin default_password_origin;
    std::string ca_file;  // empty: the system CA store; else an absolute path to a readable file
    bool allow_insecure_http = false;
    std::chrono::milliseconds request_timeout{30000};
    unsigned max_concurrent_requests = 4;
    double max_requests_per_second = 10;
    std::uint64_t max_response_bytes = std::uint64_t{1} << 30;
    std::uint64_t max_field_bytes = std::uint64_t{1} << 20;  // one JSON string, key or number
    retry_config retry;
};

// A window is re-fetched at most every `every` while its start lies within
// `within` of today (past or future). Tiers are checked nearest first.
struct freshness_tier {
    std::chrono::days within{0};
    std::chrono::seconds every{0};
};

struct sync_config {
    comeback::date_criteria date_criteria;  // Occurrence; qualified: the member shares the type's name
    date::days window{7};
    date::days lookback{30};
    date::days horizon{365};
    std::chrono::seconds poll_interval{300};
    date::year_month_day history_start{date::year{2020} / 1 / 1};
    std::vector<freshness_tier> freshness;  // defaults filled in by the loader when absent
    std::chrono::seconds shutdown_grace{30};
    deletion_guard_config deletion_guard;
};

struct customer_config {
    std::string id;
    std::string name;
    secret password;  // the customer's own, or vitec's default
    comeback::password_origin password_origin;  // qualified: the member shares the type's name
};

struct metrics_config {
    std::optional<listen_address> listen;  // empty: no listener
    per_customer_series per_customer = per_customer_series::trouble;
    // Connections the listener keeps open at once; a new one beyond it closes
    // the oldest. Each open connection is one file descriptor.
    unsigned max_connections = 64;
    // A request must arrive whole within this from its first byte's wait (and
    // its response be taken within it again), however slowly it trickles in.
    std::chrono::milliseconds request_timeout{10000};
};

// What is kept of personal data (docs/privacy.md).
struct privacy_config {
    comeback::contact_names contact_names = comeback::contact_names::keep;
    secret pseudonym_key;  // required for pseudonymize; from the same sources as passwords
    password_origin pseudonym_key_origin;
    // Rejected elements' raw text (which may hold names) is emptied this long
    // after the element was last seen; 0 keeps none.
    std::chrono::seconds rejected_raw_retention{90 * 24 * 3600};
};

struct log_config {
    log_level level = log_level::info;
    log_format format = log_format::text;
};

struct config {
    std::filesystem::path source;  // the file it was read from
    database_config database;
    vitec_config vitec;
    sync_config sync;
    std::vector<customer_config> customers;
    metrics_config metrics;
    log_config log;
    privacy_config privacy;
};

// Reads and checks a configuration file, resolving every password (files,
// environment variables, systemd credentials). Throws config_error.
config load_config(const std::filesystem::path& file);

// What load_config knows of the file besides its text.
struct config_origin {
    std::filesystem::path file;       // as the operator named it: messages and config::source
    std::filesystem::path directory;  // a relative password_file resolves against it
    unsigned mode = 0;                // the file's st_mode: an inline password needs no group/other read
};

// load_config once the file is read: checks `yaml` as the content of `origin`.
// Passwords are still resolved from files and the environment. Throws config_error.
config load_config_text(std::string_view yaml, const config_origin& origin);

// Every key path the loader accepts, in file order: "database",
// "database.conninfo", ..., "sync.freshness[].within", "customers[].id". The
// same table the loader refuses unknown keys against.
std::vector<std::string> known_key_paths();

// Parses "30s", "5m", "2h", "7d" (and "250ms"). Throws std::invalid_argument.
std::chrono::milliseconds parse_duration(std::string_view text);

// Parses "512MiB", "1GiB", "64KiB", "100" (bytes). Throws std::invalid_argument.
// KiB/MiB/GiB/TiB are powers of 1024, kB/MB/GB/TB powers of 1000, B or no unit bytes.
std::uint64_t parse_size(std::string_view text);

// The shortest exact spelling parse_duration reads back: 300000ms -> "5m".
std::string format_duration(std::chrono::milliseconds value);

// The shortest exact spelling parse_size reads back, binary units only: 1073741824 -> "1GiB".
std::string format_size(std::uint64_t bytes);

// A libpq connection string (URI or key=value) with every password in it
// replaced by "***": postgresql://u:***@h/db, password=***. Safe to log.
std::string mask_conninfo(std::string_view conninfo);

// What an operator must hear about while vitec.allow_insecure_http is true
// (logged at every start, shown by `status`); nullopt while it is false.
// Names whether the configured base URL uses plain http right now.
std::optional<std::string> insecure_http_warning(const config& cfg);

// The effective configuration as indented text, every value included, for
// `comeback-sync check-config`. Passwords appear only as their origin
// ("<from file /etc/...>"); the conninfo is masked. Never throws for a loaded config.
std::string describe(const config& cfg);

}  // namespace comeback
