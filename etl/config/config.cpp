#include "config/config.hpp"

#include "model/timestamp.hpp"

#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <span>
#include <sstream>
#include <system_error>
#include <utility>

namespace comeback {

namespace {

using std::chrono::milliseconds;

// ---------------------------------------------------------------------------
// Durations and sizes

struct unit {
    std::string_view name;
    std::uint64_t factor;
};

// Longest names first, so "ms" is not read as "m" followed by garbage.
constexpr unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000},
};

constexpr unit size_units[] = {
    {"KiB", std::uint64_t{1} << 10}, {"MiB", std::uint64_t{1} << 20},
    {"GiB", std::uint64_t{1} << 30}, {"TiB", std::uint64_t{1} << 40},
    {"kB", 1'000},                    {"MB", 1'000'000},
    {"GB", 1'000'000'000},            {"TB", 1'000'000'000'000},
    {"B", 1},                         {"", 1},
};

std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    return text;
}

// Splits "512MiB" into 512 and "MiB". Throws std::invalid_argument with `what`
// when there are no leading digits; the caller checks the unit.
std::pair<std::uint64_t, std::string_view> split_number(std::string_view text, const char* what) {
    text = trim(text);
    std::uint64_t number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (end == text.data()) throw std::invalid_argument(std::string("no number in ") + what);
    if (ec == std::errc::result_out_of_range) throw std::invalid_argument(std::string(what) + " is too large");
    return {number, trim(std::string_view(end, text.data() + text.size() - end))};
}

std::uint64_t scale(std::uint64_t number, std::uint64_t factor, const char* what) {
    if (factor != 0 && number > std::numeric_limits<std::uint64_t>::max() / factor)
        throw std::invalid_argument(std::string(what) + " is too large");
    return number * factor;
}

// ---------------------------------------------------------------------------
// The file's layout: every key each section may hold. The loader refuses any
// other key, and known_key_paths() lists exactly these, so the documentation
// test checks the very list the loader uses.

constexpr std::string_view top_keys[] = {"database", "vitec", "sync", "customers", "metrics", "log", "privacy"};
constexpr std::string_view database_keys[] = {
    "conninfo", "schema", "auto_migrate", "connect_timeout", "statement_timeout", "lock_timeout",
    "idle_in_transaction_timeout", "tcp_user_timeout", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "probe_interval", "outage_grace", "pool_size"};
constexpr std::string_view vitec_keys[] = {
    "base_url", "timezone", "username", "password", "password_file", "password_env", "password_credential",
    "ca_file", "allow_insecure_http", "request_timeout", "max_concurrent_requests", "max_requests_per_second",
    "max_response_bytes", "max_field_bytes", "retry"};
constexpr std::string_view retry_keys[] = {"max_attempts", "base_delay", "max_delay", "max_retry_after",
                                           "auth_backoff"};
constexpr std::string_view sync_keys[] = {"date_criteria", "window", "lookback", "horizon", "poll_interval",
                                          "history_start", "freshness", "shutdown_grace", "deletion_guard"};
constexpr std::string_view freshness_keys[] = {"within", "every"};
constexpr std::string_view deletion_guard_keys[] = {"enabled", "min_deleted", "max_fraction", "accept_after"};
constexpr std::string_view customer_keys[] = {"id", "name", "password", "password_file", "password_env",
                                              "password_credential"};
constexpr std::string_view metrics_keys[] = {"listen", "per_customer_series", "max_connections",
                                             "request_timeout"};
constexpr std::string_view log_keys[] = {"level", "format"};
constexpr std::string_view privacy_keys[] = {"contact_names", "pseudonym_key_file", "pseudonym_key_env",
                                             "pseudonym_key_credential", "rejected_raw_retention"};

struct section_layout {
    std::string_view path;  // "" for the top level; "[]" stands for every item of a list
    std::span<const std::string_view> keys;
};

constexpr section_layout file_layout[] = {
    {"", top_keys},
    {"database", database_keys},
    {"vitec", vitec_keys},
    {"vitec.retry", retry_keys},
    {"sync", sync_keys},
    {"sync.freshness[]", freshness_keys},
    {"sync.deletion_guard", deletion_guard_keys},
    {"customers[]", customer_keys},
    {"metrics", metrics_keys},
    {"log", log_keys},
    {"privacy", privacy_keys},
};

std::span<const std::string_view> keys_of(std::string_view layout_path) {
    for (const section_layout& layout : file_layout)
        if (layout.path == layout_path) return layout.keys;
    throw std::logic_error("no layout for configuration section " + std::string(layout_path));
}

// ---------------------------------------------------------------------------
// The file being read, for messages: every error names file:line:column.

struct document {
    std::string name;                // the path as given, as the operator typed it
    std::filesystem::path directory;  // relative password_file paths resolve against it
    mode_t mode = 0;
};

std::string in_quotes(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

[[noreturn]] void fail(const document& doc, const YAML::Mark& mark, std::string_view path,
                       std::string_view message) {
    std::string text = doc.name;
    if (!mark.is_null()) text += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    text += ": ";
    if (!path.empty()) {
        text += path;
        text += ": ";
    }
    text += message;
    throw config_error(text);
}

std::string kind_of(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Null: return "nothing";
        case YAML::NodeType::Scalar: return "a single value";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Map: return "a mapping";
        default: return "nothing";
    }
}

// One value in the file with its key path. Type errors never repeat the value,
// which may be a password typed under the wrong key; only checks on keys that
// hold no secret (durations, sizes, names) quote what they found.
struct field {
    const document* doc;
    YAML::Node node;
    YAML::Mark key_mark;  // where the key is; a null value has no useful mark of its own
    std::string path;

    YAML::Mark mark() const { return node.IsNull() || node.Mark().is_null() ? key_mark : node.Mark(); }

    [[noreturn]] void fail(std::string_view message) const { comeback::fail(*doc, mark(), path, message); }

    const std::string& scalar(const char* expected) const {
        if (!node.IsScalar()) fail(std::string("expected ") + expected + ", found " + kind_of(node));
        return node.Scalar();
    }

    std::string text() const { return scalar("a string"); }

    std::string non_empty_text() const {
        std::string value = text();
        if (trim(value).empty()) fail("must not be empty");
        return value;
    }

    bool boolean() const {
        const std::string& value = scalar("true or false");
        if (value == "true") return true;
        if (value == "false") return false;
        fail(in_quotes(value) + " is not a boolean (use true or false)");
    }

    std::uint64_t whole_number(std::uint64_t minimum) const {
        const std::string& value = scalar("a whole number");
        std::uint64_t number = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
        if (end != value.data() + value.size() || value.empty() || ec != std::errc())
            fail(in_quotes(value) + " is not a whole number");
        if (number < minimum) fail("must be at least " + std::to_string(minimum));
        return number;
    }

    unsigned count(unsigned minimum) const {
        std::uint64_t number = whole_number(minimum);
        if (number > std::numeric_limits<unsigned>::max()) fail(in_quotes(node.Scalar()) + " is too large");
        return static_cast<unsigned>(number);
    }

    double positive_number() const {
        const std::string& value = scalar("a number");
        double number = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
        if (end != value.data() + value.size() || value.empty() || ec != std::errc() || !std::isfinite(number))
            fail(in_quotes(value) + " is not a number");
        if (number <= 0) fail("must be greater than 0");
        return number;
    }

    milliseconds duration(bool zero_allowed) const {
        const std::string& value = scalar("a duration");
        milliseconds result;
        try {
            result = parse_duration(value);
        } catch (const std::invalid_argument&) {
            fail(in_quotes(value) + " is not a duration (use 30s, 5m, 2h, 7d)");
        }
        if (!zero_allowed && result.count() == 0) fail("must be longer than 0");
        return result;
    }

    std::chrono::seconds seconds(bool zero_allowed) const {
        milliseconds value = duration(zero_allowed);
        if (value.count() % 1000 != 0) fail(in_quotes(node.Scalar()) + " is not a whole number of seconds");
        return std::chrono::duration_cast<std::chrono::seconds>(value);
    }

    date::days days(bool zero_allowed) const {
        milliseconds value = duration(zero_allowed);
        if (value % date::days{1} != milliseconds::zero())
            fail(in_quotes(node.Scalar()) + " is not a whole number of days (use 7d)");
        return std::chrono::duration_cast<date::days>(value);
    }

    // A value read by one of config/values.hpp's parse functions, whose
    // std::invalid_argument carries the reason.
    template <typename Parse>
    auto parsed(const char* expected, Parse parse) const {
        const std::string& value = scalar(expected);
        try {
            return parse(value);
        } catch (const std::invalid_argument& e) {
            fail(e.what());
        }
    }

    std::uint64_t size() const {
        const std::string& value = scalar("a size");
        std::uint64_t result = 0;
        try {
            result = parse_size(value);
        } catch (const std::invalid_argument&) {
            fail(in_quotes(value) + " is not a size (use 1GiB, 512MiB, 64KiB or bytes)");
        }
        if (result == 0) fail("must be greater than 0");
        return result;
    }
};

// A YAML mapping whose keys are all known, each given once. A null value
// (`metrics:` with nothing under it) reads as an empty section.
class section {
public:
    // `layout` names the section in file_layout: "vitec.retry", "customers[]".
    section(const field& where, std::string_view layout)
        // A missing key is reported at the section's own key ("vitec:"), where it belongs.
        : doc_(where.doc), path_(where.path), mark_(where.key_mark.is_null() ? where.mark() : where.key_mark) {
        const std::span<const std::string_view> known = keys_of(layout);
        if (where.node.IsNull()) return;
        if (!where.node.IsMap()) where.fail("expected a mapping of keys, found " + kind_of(where.node));
        for (auto it = where.node.begin(); it != where.node.end(); ++it) {
            const YAML::Node key = it->first;  // a copy: the iterator hands out a temporary pair
            if (!key.IsScalar()) fail(*doc_, key.Mark(), path_, "keys must be plain names");
            const std::string name = key.Scalar();
            std::string key_path = join(name);
            if (std::find(known.begin(), known.end(), name) == known.end()) {
                std::string list;
                for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
                fail(*doc_, key.Mark(), key_path, "unknown key (known here: " + list + ")");
            }
            if (find(name)) {
                fail(*doc_, key.Mark(), key_path,
                     "given twice (first on line " + std::to_string(find(name)->key_mark.line + 1) + ")");
            }
            entries_.emplace_back(name, field{doc_, it->second, key.Mark(), key_path});
        }
    }

    const std::string& path() const { return path_; }

    bool has(std::string_view key) const { return find(key) != nullptr; }

    std::optional<field> get(std::string_view key) const {
        if (const field* f = find(key)) return *f;
        return std::nullopt;
    }

    field require(std::string_view key) const {
        if (const field* f = find(key)) return *f;
        fail(*doc_, mark_, join(key), "required key is missing");
    }

    [[noreturn]] void fail_here(std::string_view message) const { fail(*doc_, mark_, path_, message); }

    template <typename T, typename Read>
    void read(std::string_view key, T& target, Read reader) const {
        if (auto f = get(key)) target = reader(*f);
    }

private:
    std::string join(std::string_view key) const {
        return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    }

    const field* find(std::string_view key) const {
        for (const auto& [name, f] : entries_)
            if (name == key) return &f;
        return nullptr;
    }

    const document* doc_;
    std::string path_;
    YAML::Mark mark_;
    std::vector<std::pair<std::string, field>> entries_;  // in file order
};

// ---------------------------------------------------------------------------
// Passwords and other secrets

// The keys a secret may come from: NAME (inline, passwords only), NAME_file,
// NAME_env, NAME_credential.
struct secret_keys {
    std::string_view inline_text;  // empty: no inline form
    std::string_view file, env, credential;
    std::string_view what;         // "password", "pseudonym key": for messages
};
constexpr secret_keys password_keys{"password", "password_file", "password_env", "password_credential", "password"};
constexpr secret_keys pseudonym_key_keys{"", "pseudonym_key_file", "pseudonym_key_env", "pseudonym_key_credential",
                                         "pseudonym key"};

void strip_line_breaks(std::string& text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
}

// A password file or credential longer than this holds something else.
constexpr std::size_t max_secret_file_bytes = 64 * 1024;

// Reads a whole password file or credential into a secret. Refuses one that
// group or others may read, as ssh refuses such a private key: the password
// would be only as private as the file. Errors name the file and its mode,
// never its content; every buffer that held the content is wiped.
secret read_secret_file(const field& f, const std::filesystem::path& path, const std::string& what) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) f.fail("cannot read " + what + " " + path.string() + ": " + std::strerror(errno));
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } closed{fd};
    struct stat info {};
    if (::fstat(fd, &info) != 0) f.fail("cannot read " + what + " " + path.string() + ": " + std::strerror(errno));
    if (S_ISDIR(info.st_mode)) f.fail(what + " " + path.string() + " is a directory");
    if (info.st_mode & (S_IRGRP | S_IROTH)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
        f.fail(what + " " + path.string() + " is readable by group or others (mode " + mode +
               "): run chmod 600 on it; a password must be readable by its owner only");
    }
    std::string content;
    content.reserve(max_secret_file_bytes + 1);  // never reallocated: no unwiped copy is left behind
    char block[4096];
    for (;;) {
        const ssize_t got = ::read(fd, block, sizeof block);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            OPENSSL_cleanse(block, sizeof block);
            wipe(content);
            f.fail("cannot read " + what + " " + path.string() + ": " + std::strerror(errno));
        }
        if (got == 0) break;
        const std::size_t room = max_secret_file_bytes + 1 - content.size();
        content.append(block, std::min(static_cast<std::size_t>(got), room));
        if (content.size() > max_secret_file_bytes) break;
    }
    OPENSSL_cleanse(block, sizeof block);
    if (content.size() > max_secret_file_bytes) {
        wipe(content);
        f.fail(what + " " + path.string() + " is larger than " + format_size(max_secret_file_bytes) +
               ": that is not a password");
    }
    strip_line_breaks(content);
    if (content.empty()) f.fail(what + " " + path.string() + " is empty");
    secret value(content);
    wipe(content);
    return value;
}

struct resolved_password {
    secret value;
    password_origin origin;
};

// The secret configured directly in `s` under `keys` (vitec's or one
// customer's password, the pseudonym key), if any.
std::optional<resolved_password> read_secret(const document& doc, const section& s, const secret_keys& keys) {
    std::vector<field> given;
    std::string names;
    for (std::string_view key : {keys.inline_text, keys.file, keys.env, keys.credential}) {
        if (key.empty()) continue;
        names += (names.empty() ? "" : ", ") + std::string(key);
        if (auto f = s.get(key)) given.push_back(*f);
    }
    if (given.empty()) return std::nullopt;
    if (given.size() > 1) given[1].fail("give only one of " + names + " (" + given[0].path + " is set too)");
    const field& f = given[0];
    std::string key = f.path.substr(f.path.rfind('.') + 1);
    const std::string what{keys.what};

    if (key == keys.file) {
        std::filesystem::path path = f.non_empty_text();
        if (path.is_relative()) path = (doc.directory / path).lexically_normal();
        return resolved_password{read_secret_file(f, path, what + " file"),
                                 {password_source::file, path.string()}};
    }
    if (key == keys.env) {
        std::string name = f.non_empty_text();
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) f.fail("environment variable " + name + " is not set");
        std::string text = value;
        strip_line_breaks(text);
        if (text.empty()) f.fail("environment variable " + name + " is empty");
        secret password(text);
        wipe(text);
        return resolved_password{std::move(password), {password_source::env, name}};
    }
    if (key == keys.credential) {
        std::string name = f.non_empty_text();
        if (name.find('/') != std::string::npos || name == "." || name == "..")
            f.fail(in_quotes(name) + " is not a credential name (a plain file name, as in LoadCredential=NAME:PATH)");
        const char* directory = std::getenv("CREDENTIALS_DIRECTORY");
        if (directory == nullptr || *directory == '\0') {
            f.fail("credential " + name +
                   " needs CREDENTIALS_DIRECTORY, which is not set (systemd sets it for LoadCredential=)");
        }
        std::filesystem::path path = std::filesystem::path(directory) / name;
        return resolved_password{read_secret_file(f, path, "credential"), {password_source::credential, name}};
    }
    // An inline password is only as private as the file it is written in.
    if (doc.mode & (S_IRGRP | S_IROTH)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(doc.mode & 07777));
        f.fail(std::string("an inline password is refused: ") + doc.name + " is readable by group or others (mode " +
               mode + "); run chmod 600 on it, or use password_file, password_env or password_credential");
    }
    const std::string& value = f.scalar("a string");
    if (value.empty()) f.fail("must not be empty");
    return resolved_password{secret(value), {password_source::inline_text, ""}};
}

// ---------------------------------------------------------------------------
// Checks on single values

bool is_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

date::year_month_day check_date(const field& f) {
    const std::string& text = f.scalar("a date");
    auto bad = [&] { f.fail(in_quotes(text) + " is not a date (use YYYY-MM-DD)"); };
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') bad();
    std::string_view v = text;
    if (!is_digits(v.substr(0, 4)) || !is_digits(v.substr(5, 2)) || !is_digits(v.substr(8, 2))) bad();
    int y = 0;
    unsigned m = 0, d = 0;
    std::from_chars(v.data(), v.data() + 4, y);
    std::from_chars(v.data() + 5, v.data() + 7, m);
    std::from_chars(v.data() + 8, v.data() + 10, d);
    date::year_month_day day{date::year{y}, date::month{m}, date::day{d}};
    if (!day.ok()) f.fail(in_quotes(text) + " is not a calendar date");
    return day;
}

// Keeps the conninfo's own password subject to the same rule as an inline password.
bool conninfo_has_password(std::string_view conninfo) { return mask_conninfo(conninfo) != conninfo; }

// ---------------------------------------------------------------------------
// Sections

void read_database(const document& doc, const section& root, database_config& out) {
    field where = root.require("database");
    section s(where, "database");
    field conninfo = s.require("conninfo");
    // Empty is allowed: libpq then takes everything from PGHOST, PGDATABASE and friends.
    out.conninfo = conninfo.text();
    if (conninfo_has_password(out.conninfo) && (doc.mode & (S_IRGRP | S_IROTH))) {
        conninfo.fail("a password inside the conninfo is refused: " + doc.name +
                      " is readable by group or others; run chmod 600 on it, or leave the password to "
                      "PGPASSFILE (~/.pgpass) or PGPASSWORD");
    }
    s.read("schema", out.schema, [](const field& f) {
        std::string name = f.non_empty_text();
        bool plain = std::all_of(name.begin(), name.end(), [](unsigned char c) {
                         return std::islower(c) || std::isdigit(c) || c == '_';
                     }) && !std::isdigit(static_cast<unsigned char>(name.front()));
        if (!plain) f.fail(in_quotes(name) + " is not a plain schema name (lower-case letters, digits, _)");
        return name;
    });
    s.read("auto_migrate", out.auto_migrate, [](const field& f) { return f.boolean(); });
    database_timeouts& t = out.timeouts;
    // libpq takes connect_timeout and the keepalives in whole seconds.
    auto whole_seconds = [](const field& f) { return f.seconds(false); };
    auto longer_than_zero = [](const field& f) { return f.duration(false); };
    s.read("connect_timeout", t.connect_timeout, whole_seconds);
    s.read("statement_timeout", t.statement_timeout, longer_than_zero);
    s.read("lock_timeout", t.lock_timeout, longer_than_zero);
    s.read("idle_in_transaction_timeout", t.idle_in_transaction_timeout, longer_than_zero);
    s.read("tcp_user_timeout", t.tcp_user_timeout, longer_than_zero);
    s.read("keepalives_idle", t.keepalives_idle, whole_seconds);
    s.read("keepalives_interval", t.keepalives_interval, whole_seconds);
    s.read("keepalives_count", t.keepalives_count, [](const field& f) { return f.count(1); });
    s.read("probe_interval", out.probe_interval, longer_than_zero);
    s.read("outage_grace", out.outage_grace, longer_than_zero);
    s.read("pool_size", out.pool_size, [](const field& f) { return f.count(2); });
    if (t.connect_timeout < std::chrono::seconds(2)) {
        // libpq reads anything shorter as 2 seconds; say so rather than pretend.
        s.get("connect_timeout")->fail("must be at least 2s (libpq's shortest connect timeout)");
    }
}

void read_retry(const section& vitec, retry_config& out) {
    auto where = vitec.get("retry");
    if (!where) return;
    section s(*where, "vitec.retry");
    s.read("max_attempts", out.max_attempts, [](const field& f) { return f.count(1); });
    s.read("base_delay", out.base_delay, [](const field& f) { return f.duration(false); });
    s.read("max_delay", out.max_delay, [](const field& f) { return f.duration(false); });
    s.read("max_retry_after", out.max_retry_after, [](const field& f) { return f.duration(false); });
    s.read("auth_backoff", out.auth_backoff, [](const field& f) { return f.duration(false); });
    if (out.max_delay < out.base_delay) {
        field f = s.has("max_delay") ? *s.get("max_delay") : *s.get("base_delay");
        f.fail("retry.max_delay (" + format_duration(out.max_delay) + ") is shorter than retry.base_delay (" +
               format_duration(out.base_delay) + ")");
    }
}

void read_vitec(const document& doc, const section& root, vitec_config& out) {
    field where = root.require("vitec");
    section s(where, "vitec");
    s.read("allow_insecure_http", out.allow_insecure_http, [](const field& f) { return f.boolean(); });
    bool insecure = out.allow_insecure_http;
    s.read("base_url", out.base_url, [&](const field& f) {
        return f.parsed("a URL", [&](const std::string& text) { return parse_vitec_url(text, insecure); });
    });
    s.read("timezone", out.timezone, [](const field& f) {
        std::string name = f.non_empty_text();
        try {
            find_zone(name);  // the same lookup the parser and the planner use later
        } catch (const std::exception&) {
            f.fail(in_quotes(name) + " is not a known time zone (use an IANA name such as Europe/Stockholm)");
        }
        return name;
    });
    out.username = s.require("username").non_empty_text();
    if (auto password = read_secret(doc, s, password_keys)) {
        out.default_password = std::move(password->value);
        out.default_password_origin = std::move(password->origin);
    }
    s.read("ca_file", out.ca_file, [&](const field& f) {
        std::filesystem::path path = f.non_empty_text();
        if (path.is_relative()) path = (doc.directory / path).lexically_normal();
        // The client loads the certificates when it starts; a path that
        // cannot work is refused here, with the line it came from.
        std::ifstream in(path);
        if (!in) f.fail("cannot read CA file " + path.string() + ": " + std::strerror(errno));
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) f.fail("CA file " + path.string() + " is not a regular file");
        return path.string();
    });
    s.read("request_timeout", out.request_timeout, [](const field& f) { return f.duration(false); });
    s.read("max_concurrent_requests", out.max_concurrent_requests, [](const field& f) { return f.count(1); });
    s.read("max_requests_per_second", out.max_requests_per_second,
           [](const field& f) { return f.positive_number(); });
    s.read("max_response_bytes", out.max_response_bytes, [](const field& f) { return f.size(); });
    s.read("max_field_bytes", out.max_field_bytes, [](const field& f) { return f.size(); });
    read_retry(s, out.retry);
}

void read_freshness(const field& where, sync_config& out) {
    if (!where.node.IsSequence()) where.fail("expected a list of {within, every}, found " + kind_of(where.node));
    if (where.node.size() == 0) where.fail("needs at least one tier (leave the key out for the defaults)");
    std::map<date::days, std::size_t> seen;  // within -> index, to catch the same tier twice
    for (std::size_t i = 0; i < where.node.size(); ++i) {
        field item{where.doc, where.node[i], where.node[i].Mark(), where.path + "[" + std::to_string(i) + "]"};
        section tier(item, "sync.freshness[]");
        freshness_tier t;
        t.within = tier.require("within").days(false);
        t.every = tier.require("every").seconds(false);
        if (auto [it, fresh] = seen.emplace(t.within, i); !fresh) {
            tier.require("within").fail("the same within as " + where.path + "[" + std::to_string(it->second) + "]");
        }
        out.freshness.push_back(t);
    }
    // Nearest first, whatever order the file lists them in.
    std::sort(out.freshness.begin(), out.freshness.end(),
              [](const freshness_tier& a, const freshness_tier& b) { return a.within < b.within; });
}

void read_deletion_guard(const section& sync, deletion_guard_config& out) {
    auto where = sync.get("deletion_guard");
    if (!where) return;
    section s(*where, "sync.deletion_guard");
    s.read("enabled", out.enabled, [](const field& f) { return f.boolean(); });
    s.read("min_deleted", out.min_deleted, [](const field& f) { return f.count(0); });
    s.read("max_fraction", out.max_fraction, [](const field& f) {
        const double fraction = f.positive_number();
        if (fraction > 1) f.fail(in_quotes(f.node.Scalar()) + " is more than 1 (a fraction: 0.5 is half)");
        return fraction;
    });
    s.read("accept_after", out.accept_after, [](const field& f) { return f.seconds(true); });
}

void read_sync(const document& doc, const section& root, sync_config& out) {
    // Every sync key has a default, so the whole section may be left out.
    field where = root.get("sync").value_or(field{&doc, YAML::Node(), YAML::Mark::null_mark(), "sync"});
    section s(where, "sync");
    // Vitec documents only Occurrence and publishes no full list, so any name
    // is passed on as configured.
    s.read("date_criteria", out.date_criteria, [](const field& f) { return date_criteria(f.non_empty_text()); });
    s.read("window", out.window, [](const field& f) { return f.days(false); });
    s.read("lookback", out.lookback, [](const field& f) { return f.days(true); });
    s.read("horizon", out.horizon, [](const field& f) { return f.days(true); });
    s.read("poll_interval", out.poll_interval, [](const field& f) { return f.seconds(false); });
    s.read("history_start", out.history_start, [](const field& f) { return check_date(f); });
    s.read("shutdown_grace", out.shutdown_grace, [](const field& f) { return f.seconds(true); });
    read_deletion_guard(s, out.deletion_guard);
    if (auto freshness = s.get("freshness")) {
        read_freshness(*freshness, out);
    } else {
        out.freshness = {
            {date::days{14}, out.poll_interval},
            {date::days{90}, std::chrono::hours{1}},
            {date::days{400}, date::days{1}},
        };
    }
}

void read_customers(const document& doc, const section& root, const vitec_config& vitec,
                    std::vector<customer_config>& out) {
    field where = root.require("customers");
    if (!where.node.IsSequence()) where.fail("expected a list of customers, found " + kind_of(where.node));
    if (where.node.size() == 0) where.fail("needs at least one customer");
    std::map<std::string, std::pair<std::size_t, YAML::Mark>> ids;
    out.reserve(where.node.size());  // a fleet's list, without the slack of growing
    for (std::size_t i = 0; i < where.node.size(); ++i) {
        std::string path = "customers[" + std::to_string(i) + "]";
        field item{&doc, where.node[i], where.node[i].Mark(), path};
        section s(item, "customers[]");
        customer_config c;
        field id = s.require("id");
        c.id = id.non_empty_text();
        if (std::any_of(c.id.begin(), c.id.end(), [](unsigned char ch) { return std::isspace(ch) || std::iscntrl(ch); }))
            id.fail(in_quotes(c.id) + " must not contain spaces or control characters");
        if (auto [it, fresh] = ids.emplace(c.id, std::pair{i, id.mark()}); !fresh) {
            id.fail(in_quotes(c.id) + " is already used by customers[" + std::to_string(it->second.first) + "] (line " +
                    std::to_string(it->second.second.line + 1) + ")");
        }
        s.read("name", c.name, [](const field& f) { return f.text(); });
        if (auto password = read_secret(doc, s, password_keys)) {
            c.password = std::move(password->value);
            c.password_origin = std::move(password->origin);
        } else if (!vitec.default_password.empty()) {
            c.password = vitec.default_password;
            c.password_origin = {password_source::vitec_default, ""};
        } else {
            s.fail_here("customer " + c.id +
                        " has no password: set password_file, password_env or password_credential on the "
                        "customer, or a default under vitec");
        }
        out.push_back(std::move(c));
    }
}

void read_metrics(const section& root, metrics_config& out) {
    auto where = root.get("metrics");
    if (!where) return;
    section s(*where, "metrics");
    s.read("listen", out.listen, [](const field& f) -> std::optional<listen_address> {
        if (f.scalar("host:port").empty()) return std::nullopt;  // explicitly no listener
        return f.parsed("host:port", [](const std::string& text) { return parse_listen_address(text); });
    });
    s.read("per_customer_series", out.per_customer,
           [](const field& f) { return f.parsed("a string", parse_per_customer_series); });
    s.read("max_connections", out.max_connections, [](const field& f) { return f.count(1); });
    s.read("request_timeout", out.request_timeout, [](const field& f) { return f.duration(false); });
}

void read_log(const section& root, log_config& out) {
    auto where = root.get("log");
    if (!where) return;
    section s(*where, "log");
    s.read("level", out.level, [](const field& f) { return f.parsed("a string", parse_log_level); });
    s.read("format", out.format, [](const field& f) { return f.parsed("a string", parse_log_format); });
}

void read_privacy(const document& doc, const section& root, privacy_config& out) {
    auto where = root.get("privacy");
    if (!where) return;
    section s(*where, "privacy");
    s.read("contact_names", out.contact_names,
           [](const field& f) { return f.parsed("a string", parse_contact_names); });
    if (auto key = read_secret(doc, s, pseudonym_key_keys)) {
        out.pseudonym_key = std::move(key->value);
        out.pseudonym_key_origin = std::move(key->origin);
    }
    if (out.contact_names == contact_names::pseudonymize && out.pseudonym_key.empty()) {
        s.require("contact_names").fail(
            "pseudonymize needs a key: set pseudonym_key_file, pseudonym_key_env or pseudonym_key_credential");
    }
    s.read("rejected_raw_retention", out.rejected_raw_retention, [](const field& f) { return f.seconds(true); });
}

// ---------------------------------------------------------------------------
// describe()

std::string describe_origin(const password_origin& origin) {
    switch (origin.source) {
        case password_source::file: return "<from file " + origin.name + ">";
        case password_source::env: return "<from environment variable " + origin.name + ">";
        case password_source::credential: return "<from systemd credential " + origin.name + ">";
        case password_source::inline_text: return "<inline in the configuration file>";
        case password_source::vitec_default: return "<the vitec default>";
        case password_source::none: break;
    }
    return "<none>";
}

// `text` as a YAML scalar that reads back as the same string: plain when
// nothing in it means something to YAML, double-quoted otherwise.
std::string yaml_string(std::string_view text) {
    bool plain = !text.empty() && text.front() != ':' && text.front() != '-' &&
                 std::all_of(text.begin(), text.end(), [](unsigned char c) {
                     return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':' || c == '+' ||
                            c >= 0x80;
                 });
    return plain ? std::string(text) : in_quotes(text);
}

// The shortest text from_chars reads back as exactly `value` (a stream's
// default six digits would print 1234567.5 as 1.23457e+06).
std::string shortest_number(double value) {
    char text[64];
    auto [end, ec] = std::to_chars(text, text + sizeof text, value);
    return ec == std::errc() ? std::string(text, end) : std::to_string(value);
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions

unsigned default_pool_size(unsigned max_concurrent_requests) {
    return std::min(max_concurrent_requests, 8u) + 2;
}

std::vector<std::string> known_key_paths() {
    std::vector<std::string> paths;
    for (const section_layout& layout : file_layout)
        for (std::string_view key : layout.keys)
            paths.push_back(layout.path.empty() ? std::string(key) : std::string(layout.path) + "." + std::string(key));
    return paths;
}

milliseconds parse_duration(std::string_view text) {
    auto [number, suffix] = split_number(text, "the duration");
    for (const unit& u : duration_units) {
        if (suffix == u.name) {
            std::uint64_t ms = scale(number, u.factor, "the duration");
            if (ms > static_cast<std::uint64_t>(std::numeric_limits<milliseconds::rep>::max()))
                throw std::invalid_argument("the duration is too large");
            return milliseconds(static_cast<milliseconds::rep>(ms));
        }
    }
    throw std::invalid_argument("unknown duration unit \"" + std::string(suffix) + "\" (use ms, s, m, h, d)");
}

std::uint64_t parse_size(std::string_view text) {
    auto [number, suffix] = split_number(text, "the size");
    for (const unit& u : size_units)
        if (suffix == u.name) return scale(number, u.factor, "the size");
    throw std::invalid_argument("unknown size unit \"" + std::string(suffix) +
                                "\" (use KiB, MiB, GiB, TiB, kB, MB, GB, TB or B)");
}

std::string format_duration(milliseconds value) {
    if (value.count() == 0) return "0s";
    std::string sign = value.count() < 0 ? "-" : "";
    auto magnitude = static_cast<std::uint64_t>(value.count() < 0 ? -value.count() : value.count());
    for (auto it = std::rbegin(duration_units); it != std::rend(duration_units); ++it)
        if (magnitude % it->factor == 0) return sign + std::to_string(magnitude / it->factor) + std::string(it->name);
    return sign + std::to_string(magnitude) + "ms";
}

std::string format_size(std::uint64_t bytes) {
    if (bytes == 0) return "0B";
    constexpr unit binary[] = {{"TiB", std::uint64_t{1} << 40}, {"GiB", std::uint64_t{1} << 30},
                               {"MiB", std::uint64_t{1} << 20}, {"KiB", std::uint64_t{1} << 10}};
    for (const unit& u : binary)
        if (bytes % u.factor == 0) return std::to_string(bytes / u.factor) + std::string(u.name);
    return std::to_string(bytes) + "B";
}

std::string mask_conninfo(std::string_view conninfo) {
    constexpr std::string_view mask = "***";
    auto is_secret_key = [](std::string_view key) { return key == "password" || key == "sslpassword"; };
    std::string out(conninfo);

    if (out.rfind("postgresql://", 0) == 0 || out.rfind("postgres://", 0) == 0) {
        std::size_t start = out.find("://") + 3;
        std::size_t query = out.find('?', start);
        std::string_view before_query = std::string_view(out).substr(0, query);
        // The last '@' before the query ends the user info, even when a
        // password holds an unescaped '@' or '/': mask too much, never too little.
        std::size_t at = before_query.rfind('@');
        if (at != std::string_view::npos && at >= start) {
            std::size_t colon = out.find(':', start);
            if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, mask);
        }
        query = out.find('?', start);
        if (query == std::string::npos) return out;
        std::size_t pos = query + 1;
        while (pos <= out.size()) {
            std::size_t end = out.find('&', pos);
            if (end == std::string::npos) end = out.size();
            std::size_t eq = out.find('=', pos);
            if (eq != std::string::npos && eq < end && is_secret_key(std::string_view(out).substr(pos, eq - pos))) {
                out.replace(eq + 1, end - eq - 1, mask);
                end = eq + 1 + mask.size();
            }
            pos = end + 1;
        }
        return out;
    }

    // key = value pairs; a value is a bare word or single-quoted with backslash escapes (libpq's rules).
    std::size_t pos = 0;
    while (pos < out.size()) {
        while (pos < out.size() && std::isspace(static_cast<unsigned char>(out[pos]))) ++pos;
        std::size_t key_start = pos;
        while (pos < out.size() && out[pos] != '=' && !std::isspace(static_cast<unsigned char>(out[pos]))) ++pos;
        std::string key = out.substr(key_start, pos - key_start);
        while (pos < out.size() && std::isspace(static_cast<unsigned char>(out[pos]))) ++pos;
        if (pos >= out.size() || out[pos] != '=') {
            // Not key=value: skip the word; libpq will reject it on its own.
            if (pos == key_start) ++pos;
            continue;
        }
        ++pos;
        while (pos < out.size() && std::isspace(static_cast<unsigned char>(out[pos]))) ++pos;
        std::size_t value_start = pos;
        if (pos < out.size() && out[pos] == '\'') {
            ++pos;
            while (pos < out.size() && out[pos] != '\'') pos += (out[pos] == '\\') ? 2 : 1;
            pos = std::min(pos + 1, out.size());
        } else {
            while (pos < out.size() && !std::isspace(static_cast<unsigned char>(out[pos]))) {
                pos += (out[pos] == '\\') ? 2 : 1;
            }
            pos = std::min(pos, out.size());
        }
        if (is_secret_key(key)) {
            out.replace(value_start, pos - value_start, mask);
            pos = value_start + mask.size();
        }
    }
    return out;
}

config load_config(const std::filesystem::path& file) {
    const std::string name = file.string();
    std::ifstream in(file, std::ios::binary);
    if (!in) throw config_error(name + ": cannot read the configuration: " + std::strerror(errno));
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0)
        throw config_error(name + ": cannot read the configuration: " + std::strerror(errno));
    if (!S_ISREG(info.st_mode)) throw config_error(name + ": the configuration is not a regular file");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw config_error(name + ": cannot read the configuration");

    config_origin origin{file, {}, static_cast<unsigned>(info.st_mode)};
    // Absolute, so a relative password_file still points at the same file
    // after the daemon changes its working directory.
    std::error_code ec;
    origin.directory = std::filesystem::absolute(file, ec).parent_path();
    if (ec) origin.directory = file.parent_path();
    return load_config_text(text.str(), origin);
}

config load_config_text(std::string_view yaml, const config_origin& origin) {
    document doc;
    doc.name = origin.file.string();
    doc.directory = origin.directory;
    doc.mode = static_cast<mode_t>(origin.mode);

    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::ParserException& e) {
        fail(doc, e.mark, "", "not valid YAML: " + e.msg);
    }
    if (root.IsNull()) throw config_error(doc.name + ": the configuration is empty (needs database, vitec, customers)");

    config cfg;
    cfg.source = origin.file;
    field top{&doc, root, root.Mark(), ""};
    section s(top, "");
    read_database(doc, s, cfg.database);
    read_vitec(doc, s, cfg.vitec);
    cfg.database.pool_size_set = cfg.database.pool_size != 0;
    if (!cfg.database.pool_size_set) cfg.database.pool_size = default_pool_size(cfg.vitec.max_concurrent_requests);
    read_sync(doc, s, cfg.sync);
    read_customers(doc, s, cfg.vitec, cfg.customers);
    read_metrics(s, cfg.metrics);
    read_log(s, cfg.log);
    read_privacy(doc, s, cfg.privacy);
    return cfg;
}

std::optional<std::string> insecure_http_warning(const config& cfg) {
    if (!cfg.vitec.allow_insecure_http) return std::nullopt;
    std::string text = "vitec.allow_insecure_http is true: passwords may be sent in clear over plain http";
    text += cfg.vitec.base_url.tls ? " (vitec.base_url is https now, so they are not yet)"
                                   : " (vitec.base_url " + cfg.vitec.base_url.text + " is plain http: they are)";
    return text + "; for test servers only, set it to false in production";
}

std::string describe(const config& cfg) {
    std::ostringstream out;
    const auto& d = cfg.database;
    const auto& v = cfg.vitec;
    const auto& s = cfg.sync;
    auto yes_no = [](bool b) { return b ? "true" : "false"; };

    out << "# effective configuration of " << cfg.source.string() << "\n";
    out << "database:\n";
    out << "  conninfo: " << in_quotes(mask_conninfo(d.conninfo));
    if (d.conninfo.empty()) out << "  # everything from PG* environment variables";
    out << "\n  schema: " << yaml_string(d.schema) << "\n";
    out << "  auto_migrate: " << yes_no(d.auto_migrate) << "\n";
    out << "  connect_timeout: " << format_duration(d.timeouts.connect_timeout) << "\n";
    out << "  statement_timeout: " << format_duration(d.timeouts.statement_timeout) << "\n";
    out << "  lock_timeout: " << format_duration(d.timeouts.lock_timeout) << "\n";
    out << "  idle_in_transaction_timeout: " << format_duration(d.timeouts.idle_in_transaction_timeout) << "\n";
    out << "  tcp_user_timeout: " << format_duration(d.timeouts.tcp_user_timeout) << "\n";
    out << "  keepalives_idle: " << format_duration(d.timeouts.keepalives_idle) << "\n";
    out << "  keepalives_interval: " << format_duration(d.timeouts.keepalives_interval) << "\n";
    out << "  keepalives_count: " << d.timeouts.keepalives_count << "\n";
    out << "  probe_interval: " << format_duration(d.probe_interval) << "\n";
    out << "  outage_grace: " << format_duration(d.outage_grace) << "\n";
    out << "  pool_size: " << d.pool_size << "\n";

    out << "vitec:\n";
    out << "  base_url: " << yaml_string(v.base_url.text) << "\n";
    out << "  timezone: " << yaml_string(v.timezone) << "\n";
    out << "  username: " << yaml_string(v.username) << "\n";
    out << "  password: " << describe_origin(v.default_password_origin) << "\n";
    out << "  ca_file: " << (v.ca_file.empty() ? "<the system CA store>" : yaml_string(v.ca_file)) << "\n";
    out << "  allow_insecure_http: " << yes_no(v.allow_insecure_http) << "\n";
    out << "  request_timeout: " << format_duration(v.request_timeout) << "\n";
    out << "  max_concurrent_requests: " << v.max_concurrent_requests << "\n";
    out << "  max_requests_per_second: " << shortest_number(v.max_requests_per_second) << "\n";
    out << "  max_response_bytes: " << format_size(v.max_response_bytes) << "\n";
    out << "  max_field_bytes: " << format_size(v.max_field_bytes) << "\n";
    out << "  retry:\n";
    out << "    max_attempts: " << v.retry.max_attempts << "\n";
    out << "    base_delay: " << format_duration(v.retry.base_delay) << "\n";
    out << "    max_delay: " << format_duration(v.retry.max_delay) << "\n";
    out << "    max_retry_after: " << format_duration(v.retry.max_retry_after) << "\n";
    out << "    auth_backoff: " << format_duration(v.retry.auth_backoff) << "\n";

    out << "sync:\n";
    out << "  date_criteria: " << yaml_string(s.date_criteria.name()) << "\n";
    out << "  window: " << s.window.count() << "d\n";
    out << "  lookback: " << s.lookback.count() << "d\n";
    out << "  horizon: " << s.horizon.count() << "d\n";
    out << "  poll_interval: " << format_duration(s.poll_interval) << "\n";
    out << "  history_start: " << s.history_start << "\n";
    out << "  freshness:\n";
    for (const freshness_tier& t : s.freshness)
        out << "    - {within: " << t.within.count() << "d, every: " << format_duration(t.every) << "}\n";
    out << "  shutdown_grace: " << format_duration(s.shutdown_grace) << "\n";
    out << "  deletion_guard:\n";
    out << "    enabled: " << yes_no(s.deletion_guard.enabled) << "\n";
    out << "    min_deleted: " << s.deletion_guard.min_deleted << "\n";
    out << "    max_fraction: " << shortest_number(s.deletion_guard.max_fraction) << "\n";
    out << "    accept_after: " << format_duration(s.deletion_guard.accept_after);
    if (s.deletion_guard.accept_after.count() == 0) out << "  # never by themselves: backfill --accept-deletes";
    out << "\n";

    out << "customers:\n";
    for (const customer_config& c : cfg.customers) {
        out << "  - id: " << yaml_string(c.id) << "\n";
        out << "    name: " << in_quotes(c.name) << "\n";
        out << "    password: " << describe_origin(c.password_origin) << "\n";
    }

    out << "metrics:\n";
    out << "  listen: " << (cfg.metrics.listen ? yaml_string(to_string(*cfg.metrics.listen)) : "<none: no listener>")
        << "\n";
    out << "  per_customer_series: " << to_string(cfg.metrics.per_customer) << "\n";
    out << "  max_connections: " << cfg.metrics.max_connections << "\n";
    out << "  request_timeout: " << format_duration(cfg.metrics.request_timeout) << "\n";
    out << "log:\n";
    out << "  level: " << to_string(cfg.log.level) << "\n";
    out << "  format: " << to_string(cfg.log.format) << "\n";
    const auto& p = cfg.privacy;
    out << "privacy:\n";
    out << "  contact_names: " << to_string(p.contact_names) << "\n";
    out << "  pseudonym_key: "
        << (p.pseudonym_key.empty() ? std::string("<none>") : describe_origin(p.pseudonym_key_origin)) << "\n";
    out << "  rejected_raw_retention: " << format_duration(p.rejected_raw_retention) << "\n";
    return out.str();
}

}  // namespace comeback
