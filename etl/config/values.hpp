#pragma once
// The typed values of single settings. etl/config parses their text once, when
// the file is loaded; everything downstream takes these types and never looks
// at the text again. Each value prints (to_string, text) in the spelling the
// parser reads back, which is what check-config shows.
//
// The parse functions throw std::invalid_argument with the reason only
// ("\"9464\" is not host:port ..."); load_config puts file:line:column and the
// key in front.

#include "model/privacy.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace comeback {

// ---------------------------------------------------------------------------
// Passwords: where one came from, for check-config (never the value itself).

enum class password_source {
    none,           // no password configured (only vitec's default may lack one)
    file,           // password_file: PATH
    env,            // password_env: VARIABLE
    credential,     // password_credential: NAME
    inline_text,    // password: TEXT, in the configuration file itself
    vitec_default,  // a customer without its own, using vitec's
};

struct password_origin {
    password_source source = password_source::none;
    std::string name;  // the resolved path, the variable or the credential name; empty otherwise

    friend bool operator==(const password_origin&, const password_origin&) = default;
};

// ---------------------------------------------------------------------------
// vitec.base_url

// An http(s) URL without user info, query or fragment, split into what a
// client needs to connect and to build request targets.
struct vitec_url {
    bool tls = true;          // https
    std::string host;         // for DNS, SNI and certificate checks: an IPv6 literal without brackets
    bool host_is_address = false;  // an IPv4 or IPv6 literal, which gets no SNI (RFC 6066)
    std::uint16_t port = 0;   // as given, or 443 / 80
    std::string authority;    // the Host header: the host (brackets kept) and the port when written
    std::string path_prefix;  // goes before /Report/...: "" or e.g. "/vitec", never a trailing slash
    std::string text;         // as configured, trailing slashes dropped: for messages and check-config

    friend bool operator==(const vitec_url&, const vitec_url&) = default;
};

// The Vitec Connect production system, vitec.base_url's default.
inline constexpr std::string_view default_vitec_base_url = "https://connect.maklare.vitec.net";

// Parses vitec.base_url. Plain http:// is refused unless the host is loopback
// (localhost, 127.0.0.0/8, [::1]) or allow_insecure_http is set: passwords
// would travel in clear. Throws std::invalid_argument; a message never repeats
// user info, which may hold a password.
vitec_url parse_vitec_url(std::string_view text, bool allow_insecure_http);

// ---------------------------------------------------------------------------
// metrics.listen

struct listen_address {
    std::string host;        // an IP address (IPv6 without brackets) or a host name
    std::uint16_t port = 0;  // 0: any free port, chosen when the socket is bound

    friend bool operator==(const listen_address&, const listen_address&) = default;
};

// "host:port", "[v6-address]:port", or ":port" for every IPv4 interface (read
// as 0.0.0.0:port). Port 0 asks for any free port. Throws std::invalid_argument.
listen_address parse_listen_address(std::string_view text);

// "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0".
std::string to_string(const listen_address& address);

// ---------------------------------------------------------------------------
// log.level and log.format

enum class log_level { trace, debug, info, warn, error, critical, off };
enum class log_format { text, json };

// Throw std::invalid_argument listing the accepted names.
log_level parse_log_level(std::string_view text);
log_format parse_log_format(std::string_view text);

std::string_view to_string(log_level level);
std::string_view to_string(log_format format);

// ---------------------------------------------------------------------------
// metrics.per_customer_series

// Which customers get series of their own on /metrics. `trouble`: freshness for
// every customer, everything else as totals over all customers plus the
// customers in trouble; `all`: every series for every customer.
enum class per_customer_series { trouble, all };

// Throws std::invalid_argument listing the accepted names.
per_customer_series parse_per_customer_series(std::string_view text);
std::string_view to_string(per_customer_series detail);

// ---------------------------------------------------------------------------
// privacy.contact_names: keep, pseudonymize or omit.

contact_names parse_contact_names(std::string_view text);
std::string_view to_string(contact_names mode);

}  // namespace comeback
