#include "config/values.hpp"

#include "model/text.hpp"

#include <boost/url/authority_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <utility>

namespace comeback {

namespace {

namespace urls = boost::urls;

// The value as a message shows it: quoted, escaped, cut when long.
std::string in_quotes(std::string_view text) { return quoted(text, 200); }

// What a parse function throws: the value, quoted, and what is wrong with it.
std::invalid_argument refused(std::string_view text, std::string_view why) {
    return std::invalid_argument(in_quotes(text) + " " + std::string(why));
}

// A port as written after the colon: digits only, at most 65535. RFC 3986
// allows an empty port; a setting does not.
std::optional<std::uint16_t> port_number(std::string_view text) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

// Host names as DNS knows them. The URL grammar would also take
// percent-escapes and sub-delimiters such as '!' or ';', which no real host
// name holds and which would reach the resolver and the Host header as typed.
bool plain_host_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '.' || c == '_';
    });
}

bool has_space_or_control(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); });
}

bool is_loopback(const urls::url_view& url) {
    switch (url.host_type()) {
        case urls::host_type::ipv4: return url.host_ipv4_address().is_loopback();
        case urls::host_type::ipv6: return url.host_ipv6_address().is_loopback();
        case urls::host_type::name: {
            std::string name = url.host_name();
            std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
            return name == "localhost";
        }
        default: return false;
    }
}

// One table per enum: parse_* and to_string read the same names.
constexpr std::pair<log_level, std::string_view> log_level_names[] = {
    {log_level::trace, "trace"}, {log_level::debug, "debug"},       {log_level::info, "info"},
    {log_level::warn, "warn"},   {log_level::error, "error"},       {log_level::critical, "critical"},
    {log_level::off, "off"},
};

constexpr std::pair<log_format, std::string_view> log_format_names[] = {
    {log_format::text, "text"},
    {log_format::json, "json"},
};

constexpr std::pair<per_customer_series, std::string_view> per_customer_series_names[] = {
    {per_customer_series::trouble, "trouble"},
    {per_customer_series::all, "all"},
};

constexpr std::pair<contact_names, std::string_view> contact_names_names[] = {
    {contact_names::keep, "keep"},
    {contact_names::pseudonymize, "pseudonymize"},
    {contact_names::omit, "omit"},
};

template <typename Enum, std::size_t N>
Enum parse_name(const std::pair<Enum, std::string_view> (&names)[N], std::string_view text) {
    for (const auto& [value, name] : names)
        if (name == text) return value;
    std::string list;
    for (const auto& [value, name] : names) list += (list.empty() ? "" : ", ") + std::string(name);
    throw std::invalid_argument(in_quotes(text) + " is not one of " + list);
}

template <typename Enum, std::size_t N>
std::string_view name_of(const std::pair<Enum, std::string_view> (&names)[N], Enum value) {
    for (const auto& [candidate, name] : names)
        if (candidate == value) return name;
    return "?";
}

}  // namespace

vitec_url parse_vitec_url(std::string_view text, bool allow_insecure_http) {
    auto invalid = [&](std::string_view why) { return refused(text, why); };
    if (text.empty()) throw std::invalid_argument("must not be empty");
    if (has_space_or_control(text)) throw std::invalid_argument("must not contain spaces or control characters");
    // Credentials belong in password sources, not in a URL that ends up in
    // logs. Checked on the raw text, before anything quotes it back.
    if (auto scheme_end = text.find("://"); scheme_end != std::string_view::npos) {
        std::string_view rest = text.substr(scheme_end + 3);
        if (rest.substr(0, rest.find_first_of("/?#")).find('@') != std::string_view::npos)
            throw std::invalid_argument("must not contain a user name or password");
    }
    auto parsed = urls::parse_uri(text);
    if (!parsed) {
        if (text.rfind("https://", 0) != 0 && text.rfind("http://", 0) != 0)
            throw invalid("must start with https:// (or http:// for a test server)");
        throw invalid("is not a URL (" + parsed.error().message() + ")");
    }
    const urls::url_view& url = *parsed;
    const bool https = url.scheme_id() == urls::scheme::https;
    if (!https && url.scheme_id() != urls::scheme::http)
        throw invalid("must start with https:// (or http:// for a test server)");
    if (url.has_query() || url.has_fragment()) throw invalid("must not have a query or fragment");
    if (!url.has_authority() || url.encoded_host().empty()) throw invalid("has no host");
    // After the authority a path is empty or starts with '/'. Boost.URL 1.81
    // lets "http://127.0.0.1.example.net" through as host 127.0.0.1 and path
    // ".example.net"; this keeps a host name from passing for an address.
    if (!url.encoded_path().empty() && url.encoded_path().front() != '/') throw invalid("has an invalid host");
    switch (url.host_type()) {
        case urls::host_type::ipv4:
        case urls::host_type::ipv6: break;
        case urls::host_type::name:
            if (!plain_host_name(url.encoded_host())) throw invalid("has an invalid host name");
            break;
        default: throw invalid("has an invalid host");
    }
    vitec_url out;
    out.tls = https;
    if (url.has_port()) {
        auto port = port_number(url.port());
        if (!port || *port == 0) throw invalid("has an invalid port (1 to 65535)");
        out.port = *port;
    } else {
        out.port = https ? 443 : 80;
    }
    if (!https && !allow_insecure_http && !is_loopback(url)) {
        throw invalid("sends passwords in clear over plain http; use https://, or set "
                      "vitec.allow_insecure_http: true for a test server");
    }
    out.host = url.host_address();  // an IPv6 literal without its brackets
    out.host_is_address = url.host_type() != urls::host_type::name;
    out.authority = url.encoded_host_and_port();
    out.path_prefix = url.encoded_path();
    while (!out.path_prefix.empty() && out.path_prefix.back() == '/') out.path_prefix.pop_back();
    out.text = text;
    while (!out.text.empty() && out.text.back() == '/') out.text.pop_back();
    return out;
}

listen_address parse_listen_address(std::string_view text) {
    auto invalid = [&](std::string_view why) { return refused(text, why); };
    constexpr std::string_view not_host_port =
        "is not host:port (use host:port, [v6-address]:port, or :port for every IPv4 interface)";
    if (has_space_or_control(text)) throw std::invalid_argument("must not contain spaces or control characters");
    auto parsed = urls::parse_authority(text);
    if (!parsed) {
        if (std::count(text.begin(), text.end(), ':') > 1 && text.substr(0, 1) != "[")
            throw invalid("is not host:port (an IPv6 address goes in brackets: [::1]:9464)");
        throw invalid(not_host_port);
    }
    const urls::authority_view& authority = *parsed;
    if (authority.has_userinfo() || !authority.has_port()) throw invalid(not_host_port);
    auto port = port_number(authority.port());
    if (!port) throw invalid("has no valid port (0 to 65535; 0 picks a free one)");

    listen_address out;
    out.port = *port;
    switch (authority.host_type()) {
        case urls::host_type::ipv4:
        case urls::host_type::ipv6: out.host = authority.host_address(); break;
        case urls::host_type::name:
        case urls::host_type::none:
            if (authority.encoded_host().empty()) {
                out.host = "0.0.0.0";  // ":port": every IPv4 interface
            } else if (plain_host_name(authority.encoded_host())) {
                out.host = authority.host_address();
            } else {
                throw invalid("has an invalid host name");
            }
            break;
        default: throw invalid("has an invalid host");
    }
    return out;
}

std::string to_string(const listen_address& address) {
    const bool v6 = address.host.find(':') != std::string::npos;
    return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

log_level parse_log_level(std::string_view text) { return parse_name(log_level_names, text); }
log_format parse_log_format(std::string_view text) { return parse_name(log_format_names, text); }
std::string_view to_string(log_level level) { return name_of(log_level_names, level); }
std::string_view to_string(log_format format) { return name_of(log_format_names, format); }
contact_names parse_contact_names(std::string_view text) { return parse_name(contact_names_names, text); }
std::string_view to_string(contact_names mode) { return name_of(contact_names_names, mode); }

per_customer_series parse_per_customer_series(std::string_view text) {
    return parse_name(per_customer_series_names, text);
}

std::string_view to_string(per_customer_series detail) { return name_of(per_customer_series_names, detail); }

}  // namespace comeback
