#include "sync/database.hpp"

#include "config/config.hpp"
#include "load/migrations.hpp"
#include "observability/logging.hpp"

#include <libpq-fe.h>
#include <pqxx/pqxx>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>

namespace comeback {

namespace {

using std::chrono::milliseconds;

// The libpq keys the daemon sets when database.conninfo does not.
std::vector<std::pair<std::string, std::string>> client_settings(const database_timeouts& t) {
    return {
        {"connect_timeout", std::to_string(t.connect_timeout.count())},
        {"keepalives", "1"},
        {"keepalives_idle", std::to_string(t.keepalives_idle.count())},
        {"keepalives_interval", std::to_string(t.keepalives_interval.count())},
        {"keepalives_count", std::to_string(t.keepalives_count)},
        {"tcp_user_timeout", std::to_string(t.tcp_user_timeout.count())},
    };
}

// The session settings, as the startup packet's `-c` options. The server's
// own keepalives and user timeout use the same values as the client's, so
// either end notices a dead peer as soon as the other would.
//
// Prepared statements run with the plan made once for the session
// (plan_cache_mode): left to choose, PostgreSQL planned the confirmation of
// one or two windows anew at every call once the ledger held some thousands
// of windows (0.7 ms of planning for 0.27 ms of executing), as the generic
// plan, costed for a hundred unnested windows, always looked dearer. A load
// sets the server's own choice back for its transaction (begin_load): its
// statements read staging tables whose sizes change from load to load.
std::string session_options(const database_timeouts& t) {
    auto ms = [](milliseconds value) { return std::to_string(value.count()); };
    return "-c plan_cache_mode=force_generic_plan"
           " -c statement_timeout=" + ms(t.statement_timeout) + " -c lock_timeout=" + ms(t.lock_timeout) +
           " -c idle_in_transaction_session_timeout=" + ms(t.idle_in_transaction_timeout) +
           " -c tcp_keepalives_idle=" + std::to_string(t.keepalives_idle.count()) +
           " -c tcp_keepalives_interval=" + std::to_string(t.keepalives_interval.count()) +
           " -c tcp_keepalives_count=" + std::to_string(t.keepalives_count) +
           " -c tcp_user_timeout=" + ms(t.tcp_user_timeout);
}

// The keys database.conninfo sets, with their values. Throws
// std::invalid_argument with libpq's reason.
std::map<std::string, std::string> parse_conninfo(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    if (options == nullptr) {
        std::string reason = error ? error : "out of memory";
        PQfreemem(error);
        while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
        throw std::invalid_argument("database.conninfo does not parse: " + reason);
    }
    std::map<std::string, std::string> set;
    for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
        if (option->val != nullptr) set[option->keyword] = option->val;
    }
    PQconninfoFree(options);
    return set;
}

// A value in libpq's key=value syntax: single-quoted, \ and ' escaped.
std::string quoted(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\\' || c == '\'') out += '\\';
        out += c;
    }
    return out + "'";
}

// libpq's message on one line: "connection to server at ..., port 5 failed: ...".
std::string one_line(std::string text) {
    std::string out;
    bool space = false;
    for (char c : text) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

// The entries of libpq's comma-separated host or hostaddr list; an empty one
// is libpq's default.
std::vector<std::string> list_entries(const std::string& list) {
    std::vector<std::string> entries;
    std::istringstream in(list);
    for (std::string entry; std::getline(in, entry, ',');) entries.push_back(entry);
    if (list.empty() || list.back() == ',') entries.emplace_back();
    return entries;
}

bool loopback_address(const std::string& text) {
    in_addr v4{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

// A host entry without a hostaddr: empty is libpq's default Unix socket; a
// path (or an abstract socket, '@') is a Unix socket directory.
bool local_host(const std::string& host) {
    return host.empty() || host.front() == '/' || host.front() == '@' || host == "localhost" ||
           loopback_address(host);
}

std::string setting_or_environment(const std::map<std::string, std::string>& keys, const std::string& key,
                                   const char* variable) {
    if (auto found = keys.find(key); found != keys.end()) return found->second;
    const char* value = std::getenv(variable);
    return value ? value : "";
}

}  // namespace

std::string session_conninfo(const database_config& config) {
    std::map<std::string, std::string> keys = parse_conninfo(config.conninfo);
    for (const auto& [key, value] : client_settings(config.timeouts)) keys.emplace(key, value);
    std::string user_options;
    if (auto given = keys.find("options"); given != keys.end()) {
        user_options = given->second;
    } else if (const char* environment = std::getenv("PGOPTIONS")) {
        user_options = environment;  // libpq would have read it, had we set no options
    }
    keys["options"] = session_options(config.timeouts) + (user_options.empty() ? "" : " " + user_options);
    std::string text;
    for (const auto& [key, value] : keys) text += (text.empty() ? "" : " ") + key + "=" + quoted(value);
    return text;
}

bool database_on_this_machine(const database_config& config) {
    const auto keys = parse_conninfo(config.conninfo);
    const std::string host_list = setting_or_environment(keys, "host", "PGHOST");
    const std::string addresses = setting_or_environment(keys, "hostaddr", "PGHOSTADDR");
    // A service file (pg_service.conf) may name any server: not read here.
    if (host_list.empty() && addresses.empty() && !setting_or_environment(keys, "service", "PGSERVICE").empty()) {
        return false;
    }
    const auto hosts = list_entries(host_list);
    const auto hostaddrs = addresses.empty() ? std::vector<std::string>{} : list_entries(addresses);
    const std::size_t servers = std::max(hosts.size(), hostaddrs.size());
    for (std::size_t i = 0; i < servers; ++i) {
        const std::string address = i < hostaddrs.size() ? hostaddrs[i] : "";
        const std::string host = i < hosts.size() ? hosts[i] : "";
        // libpq connects to hostaddr when given; host then only names it.
        if (!address.empty() ? !loopback_address(address) : !local_host(host)) return false;
    }
    return true;
}

unsigned backfill_pool_size(const database_config& config, unsigned cpus) {
    if (config.pool_size_set || !database_on_this_machine(config)) return config.pool_size;
    return std::min(config.pool_size, std::max(2u, cpus));
}

std::vector<std::string> conninfo_overrides(const database_config& config) {
    std::vector<std::string> overrides;
    const auto keys = parse_conninfo(config.conninfo);
    for (const auto& [key, ours] : client_settings(config.timeouts)) {
        if (auto given = keys.find(key); given != keys.end()) overrides.push_back(key + "=" + given->second);
    }
    if (auto given = keys.find("options"); given != keys.end()) overrides.push_back("options=" + given->second);
    return overrides;
}

milliseconds call_limit(const database_config& config) {
    return config.timeouts.statement_timeout + config.timeouts.connect_timeout;
}

database_connection::database_connection(const database_config& config) {
    try {
        connection_ = std::make_unique<pqxx::connection>(session_conninfo(config));
    } catch (const pqxx::broken_connection& error) {
        throw database_unreachable("PostgreSQL is unreachable: " + one_line(error.what()) +
                                   " (database.connect_timeout " +
                                   format_duration(config.timeouts.connect_timeout) +
                                   "); check that PostgreSQL runs and that database.conninfo (or the "
                                   "PG* environment variables) point at it");
    }
    // A connection libpq re-opened behind our back would carry another socket
    // than the one cut() reaches, and none of the session's state: a broken
    // one is dropped and opened anew by its owner instead.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    connection_->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    description_ = describe_database(*connection_);
    socket_ = ::fcntl(connection_->sock(), F_DUPFD_CLOEXEC, 0);
}

database_connection::~database_connection() {
    connection_.reset();
    if (socket_ >= 0) ::close(socket_);
}

void database_connection::cut() noexcept {
    std::lock_guard lock(mutex_);
    if (socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
    cut_ = true;
}

bool database_connection::was_cut() const noexcept {
    std::lock_guard lock(mutex_);
    return cut_;
}

namespace {
// How long alive() waits for a server that sent something between calls to
// close the connection, as a terminated backend does right after its message.
constexpr int closing_grace_ms = 200;
}  // namespace

bool database_connection::alive() noexcept {
    if (was_cut()) return false;
    try {
        for (int look = 0; look < 2; ++look) {
            char byte = 0;
            ssize_t peeked = ::recv(socket_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
            if (peeked < 0 && look == 1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                // The server sent something between calls: a backend being
                // terminated sends why, then closes, and the close may lag
                // behind on a busy host. Wait for it a little before trusting
                // the connection with a call.
                pollfd ready{socket_, POLLIN, 0};
                if (::poll(&ready, 1, closing_grace_ms) > 0) {
                    peeked = ::recv(socket_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                }
            }
            if (peeked == 0) return false;  // the server closed the connection
            if (peeked < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) && connection_->is_open();
            // Between calls a server sends nothing but a notice or why it is
            // ending the session: let libpq read it, then look again.
            connection_->get_notifs();
        }
        return connection_->is_open();
    } catch (...) {
        return false;
    }
}

void with_deadline(database_connection& connection, milliseconds limit,
                   const std::function<void(pqxx::connection&)>& work) {
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    std::thread watchman([&] {
        std::unique_lock lock(mutex);
        if (!finished.wait_for(lock, limit, [&] { return done; })) connection.cut();
    });
    auto stop_watching = [&] {
        {
            std::lock_guard lock(mutex);
            done = true;
        }
        finished.notify_one();
        watchman.join();
    };
    try {
        work(connection.get());
    } catch (...) {
        stop_watching();
        if (connection.was_cut()) {
            throw no_answer_error(connection.description() + " did not answer within " + format_duration(limit) +
                                  " (database.statement_timeout + database.connect_timeout); the "
                                  "connection was closed");
        }
        throw;
    }
    stop_watching();
}

int migrate_if_enabled(database_connection& connection, const database_config& config) {
    if (!config.auto_migrate) return 0;
    int applied = 0;
    with_deadline(connection, call_limit(config),
                  [&](pqxx::connection& c) { applied = migrate(c, config.schema); });
    return applied;
}

std::unique_ptr<database_connection> migrate_at_start(const database_config& config) {
    if (!config.auto_migrate) return nullptr;
    auto connection = std::make_unique<database_connection>(config);
    const int applied = migrate_if_enabled(*connection, config);
    log_event(spdlog::level::info, "migrate.done", {{"schema", config.schema}, {"applied", applied}});
    return connection;
}

}  // namespace comeback
