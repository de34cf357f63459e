// fake-vitec: a small HTTP(S) server that behaves like Vitec Connect's comeback
// report, for tests, the demo, end-to-end tests and benchmarks. See docs/development.md
// "The fake Vitec server" and `fake-vitec --help`.

#include "config/config.hpp"
#include "dataset.hpp"
#include "model/text.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <date/tz.h>
#include <openssl/evp.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
namespace fake = comeback::fake;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// Faults

// What to do instead of (or on top of) a normal answer. Written as
// comma-separated items, e.g. "status=503,retry-after=2" or "latency=200,truncate=100".
struct fault_spec {
    std::optional<int> status;
    std::optional<std::string> retry_after;
    std::optional<std::string> message;
    std::chrono::milliseconds latency{0};   // before the response head
    std::chrono::milliseconds stall{0};     // after the first body chunk
    std::optional<std::size_t> truncate;    // body bytes sent before the connection is closed
    bool reset = false;                     // close with RST, no response
    bool invalid_json = false;              // 200, application/json, not JSON
    bool html = false;                      // 200, text/html
    bool object = false;                    // 200, application/json, an object
    bool empty = false;                     // 200, application/json, [] (a silent cap, an expired view)
    bool echo_auth = false;                 // the error body quotes the Authorization header
    bool content_length = false;            // a 200's body announced by Content-Length, not chunked
};

fault_spec parse_fault(std::string_view text) {
    fault_spec spec;
    std::string item;
    std::istringstream in{std::string(text)};
    while (std::getline(in, item, ',')) {
        if (item.empty()) continue;
        auto eq = item.find('=');
        auto key = item.substr(0, eq);
        auto value = eq == std::string::npos ? std::string() : item.substr(eq + 1);
        auto number = [&] {
            try {
                return std::stoll(value);
            } catch (const std::exception&) {
                throw std::invalid_argument("fault item '" + item + "' needs a number");
            }
        };
        if (key == "status") spec.status = static_cast<int>(number());
        else if (key == "retry-after") spec.retry_after = value;
        else if (key == "message") spec.message = value;
        else if (key == "latency") spec.latency = std::chrono::milliseconds(number());
        else if (key == "stall") spec.stall = std::chrono::milliseconds(number());
        else if (key == "truncate") spec.truncate = static_cast<std::size_t>(number());
        else if (key == "reset") spec.reset = true;
        else if (key == "invalid-json") spec.invalid_json = true;
        else if (key == "html") spec.html = true;
        else if (key == "object") spec.object = true;
        else if (key == "empty") spec.empty = true;
        else if (key == "echo-auth") spec.echo_auth = true;
        else if (key == "content-length") spec.content_length = true;
        else throw std::invalid_argument("unknown fault item '" + item + "'");
    }
    return spec;
}

// Chaos mode: the first attempt at each URL fails in the next of these ways.
const std::vector<std::string> chaos_faults{
    "status=503,retry-after=1", "status=500", "reset", "truncate=64",
    "invalid-json", "html", "status=429,retry-after=1",
};

struct queued_fault {
    std::string customer;  // empty: any customer
    unsigned remaining = 1;
    fault_spec spec;
};

// ---------------------------------------------------------------------------
// State

struct server_state {
    fake::dataset_options data_options;
    // Shared with the responses being sent: a generation change mid-body
    // replaces it here while they finish from the one they began with.
    std::shared_ptr<const fake::dataset> data;
    // Per (customer, criterion) of the current generation, built on first use:
    // a window then costs the rows in it, not the customer's whole data set.
    std::map<std::pair<std::size_t, fake::date_criterion>, fake::date_index> indexes;
    std::optional<std::filesystem::path> fixture_dir;
    std::optional<std::string> username;
    std::map<std::string, std::string> passwords;
    std::string default_password;
    std::set<std::string> unauthorized;
    std::set<std::string> forbidden;
    std::optional<fault_spec> every_request_fault;
    bool chaos = false;
    std::deque<queued_fault> queued;
    std::map<std::string, unsigned> attempts_by_target;
    std::size_t chaos_count = 0;

    // What the server saw (report requests only, not /_control).
    std::uint64_t requests = 0;
    std::uint64_t connections = 0;
    std::map<std::string, std::map<int, std::uint64_t>> by_path;
    unsigned in_flight = 0;
    unsigned peak_in_flight = 0;
    // The same by path, so by customer: {in flight now, the most at once}.
    std::map<std::string, std::pair<unsigned, unsigned>> in_flight_by_path;
    std::map<std::string, std::uint64_t> user_agents;

    // Network conditions, on every report request whatever its fault.
    std::chrono::milliseconds latency{0};  // before the response head, a timer per request
    std::uint64_t bandwidth = 0;           // body bytes per second per connection; 0: unlimited

    // Generated bodies kept whole, so a repeated request costs a copy, not a
    // generation: by customer, date criterion and the from/to text. At most
    // cache_limit bytes; a body that does not fit is not kept. Cleared with
    // the generation.
    std::uint64_t cache_limit = 0;
    std::uint64_t cache_bytes = 0;
    std::uint64_t cache_hits = 0;
    std::map<std::string, std::shared_ptr<const std::string>> cache;

    void reset_stats() {
        cache_hits = 0;
        requests = 0;
        connections = 0;
        by_path.clear();
        user_agents.clear();
        peak_in_flight = in_flight;
        std::erase_if(in_flight_by_path, [](auto& entry) { return entry.second.first == 0; });
        for (auto& [path, counts] : in_flight_by_path) counts.second = counts.first;
        attempts_by_target.clear();
        chaos_count = 0;
    }
};

struct in_flight_guard {
    in_flight_guard(server_state& s, std::string request_path) : state(s), path(std::move(request_path)) {
        state.peak_in_flight = std::max(state.peak_in_flight, ++state.in_flight);
        auto& [now, peak] = state.in_flight_by_path[path];
        peak = std::max(peak, ++now);
    }
    ~in_flight_guard() {
        --state.in_flight;
        --state.in_flight_by_path[path].first;
    }
    server_state& state;
    std::string path;
};

std::string decode_base64(std::string_view text) {
    std::string out(3 * (text.size() / 4) + 3, '\0');
    auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(text.data()),
                             static_cast<int>(text.size()));
    if (n < 0) return {};
    out.resize(static_cast<std::size_t>(n));
    // EVP_DecodeBlock keeps the zero bytes that stand for '=' padding.
    while (!text.empty() && text.back() == '=') {
        text.remove_suffix(1);
        if (!out.empty()) out.pop_back();
    }
    return out;
}

std::string json_message(std::string_view message) {
    std::string body = "{\"message\":";
    comeback::append_json_string(body, message);
    return body + "}";
}

// ---------------------------------------------------------------------------
// Responses

template <class Stream>
net::awaitable<void> send(Stream& stream, http::status status, std::string_view content_type,
                          std::string body, bool keep_alive,
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::response<http::string_body> response{status, 11};
    response.set(http::field::server, "fake-vitec");
    response.set(http::field::content_type, content_type);
    for (const auto& [name, value] : headers) response.set(name, value);
    response.body() = std::move(body);
    response.keep_alive(keep_alive);
    response.prepare_payload();
    co_await http::async_write(stream, response, net::use_awaitable);
}

template <class Stream>
void reset_connection(Stream& stream) {
    auto& socket = beast::get_lowest_layer(stream).socket();
    boost::system::error_code ignored;
    socket.set_option(tcp::socket::linger(true, 0), ignored);
    socket.close(ignored);
}

// Paces the body bytes of one connection to a bandwidth, as a link of that
// speed would carry them: after each write, a timer waits until the link
// would have delivered it. Idle time between responses earns no burst. The
// rate is read at each write, so /_control/network changes open connections too.
class pacer {
public:
    explicit pacer(const std::uint64_t& bytes_per_second) : rate_(bytes_per_second) {}

    net::awaitable<void> carried(std::size_t bytes) {
        if (rate_ == 0 || bytes == 0) co_return;
        const auto now = std::chrono::steady_clock::now();
        free_at_ = std::max(free_at_, now) +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(static_cast<double>(bytes) / static_cast<double>(rate_)));
        if (free_at_ <= now) co_return;
        net::steady_timer timer(co_await net::this_coro::executor, free_at_);
        co_await timer.async_wait(net::use_awaitable);
    }

private:
    const std::uint64_t& rate_;
    std::chrono::steady_clock::time_point free_at_{};
};

// Writes a chunked body produced piece by piece by `next` (which appends to
// its argument and returns false at the end), or with the fault's
// content-length one announced by its length. `next` may instead be the
// whole body (a std::string_view, as the cache holds it): its pieces are then
// written from where it lies, copied nowhere, so a cached body costs the
// server little more than the kernel's copy. Honours truncate and stall, and
// the connection's bandwidth through `link` when given.
template <class Stream, class Producer>
net::awaitable<bool> send_chunked(Stream& stream, std::string_view content_type, bool keep_alive,
                                  const fault_spec& fault, Producer next, pacer* link = nullptr) {
    constexpr bool given_whole = std::is_same_v<Producer, std::string_view>;
    http::response<http::empty_body> response{http::status::ok, 11};
    response.set(http::field::server, "fake-vitec");
    response.set(http::field::content_type, content_type);
    response.keep_alive(keep_alive);
    constexpr std::size_t chunk_size = 64 * 1024;
    std::string made;         // with content-length: a produced body, made first to announce its length
    std::string_view whole;   // the body, when it is known whole before the first write
    bool known_whole = false;
    if constexpr (given_whole) {
        whole = next;
        known_whole = true;
    } else if (fault.content_length) {
        while (next(made)) {
        }
        whole = made;
        known_whole = true;
    }
    if (fault.content_length) {
        response.content_length(whole.size());
    } else {
        response.chunked(true);
    }
    http::response_serializer<http::empty_body> serializer{response};
    co_await http::async_write_header(stream, serializer, net::use_awaitable);
    auto write = [&](std::string_view piece) -> net::awaitable<void> {
        if (fault.content_length)
            co_await net::async_write(stream, net::buffer(piece.data(), piece.size()), net::use_awaitable);
        else
            co_await net::async_write(stream, http::make_chunk(net::buffer(piece.data(), piece.size())),
                                      net::use_awaitable);
    };

    std::string produced;  // the piece `next` made, when the body is not known whole
    std::size_t offset = 0;
    std::size_t sent = 0;
    bool more = true;
    bool first = true;
    while (more) {
        std::string_view chunk;
        if (known_whole) {
            chunk = whole.substr(offset, chunk_size);
            offset += chunk.size();
            more = offset < whole.size();
        } else {
            if constexpr (!given_whole) {
                produced.clear();
                while (more && produced.size() < chunk_size) more = next(produced);
            }
            chunk = produced;
        }
        if (fault.truncate) {
            auto allowed = *fault.truncate > sent ? *fault.truncate - sent : 0;
            // Always short of the end: a truncated body never happens to be whole.
            if (!more && chunk.size() > 0) allowed = std::min(allowed, chunk.size() - 1);
            if (allowed < chunk.size()) {
                chunk = chunk.substr(0, allowed);
                if (!chunk.empty()) co_await write(chunk);
                co_return false;  // the caller closes the connection mid-body
            }
        }
        if (!chunk.empty()) {
            co_await write(chunk);
            sent += chunk.size();
            if (link) co_await link->carried(chunk.size());
        }
        if (first && fault.stall > 0ms) {
            net::steady_timer timer(co_await net::this_coro::executor, fault.stall);
            co_await timer.async_wait(net::use_awaitable);
        }
        first = false;
    }
    if (!fault.content_length) co_await net::async_write(stream, http::make_chunk_last(), net::use_awaitable);
    co_return true;
}

// ---------------------------------------------------------------------------
// Control endpoints

// {"name":count,...}
void append_counts(std::string& out, const std::map<std::string, std::uint64_t>& counts) {
    out += '{';
    bool first = true;
    for (const auto& [name, count] : counts) {
        if (!first) out += ',';
        first = false;
        comeback::append_json_string(out, name);
        out += ":" + std::to_string(count);
    }
    out += '}';
}

std::string stats_json(const server_state& state) {
    std::string out = "{\"requests\":" + std::to_string(state.requests) +
                      ",\"connections\":" + std::to_string(state.connections) +
                      ",\"in_flight\":" + std::to_string(state.in_flight) +
                      ",\"peak_in_flight\":" + std::to_string(state.peak_in_flight) +
                      ",\"cache_hits\":" + std::to_string(state.cache_hits) +
                      ",\"cache_bytes\":" + std::to_string(state.cache_bytes) + ",\"by_path\":{";
    bool first_path = true;
    for (const auto& [path, statuses] : state.by_path) {
        if (!first_path) out += ',';
        first_path = false;
        comeback::append_json_string(out, path);
        out += ":{";
        bool first_status = true;
        for (const auto& [status, count] : statuses) {
            if (!first_status) out += ',';
            first_status = false;
            out += "\"" + std::to_string(status) + "\":" + std::to_string(count);
        }
        out += '}';
    }
    std::map<std::string, std::uint64_t> peaks;
    for (const auto& [path, counts] : state.in_flight_by_path) peaks[path] = counts.second;
    out += "},\"peak_in_flight_by_path\":";
    append_counts(out, peaks);
    out += ",\"user_agents\":";
    append_counts(out, state.user_agents);
    return out + "}";
}

std::optional<std::string> param(const boost::urls::url_view& url, std::string_view name) {
    auto params = url.params();
    auto it = params.find(name);
    if (it == params.end()) return std::nullopt;
    return std::string((*it).value);
}

template <class Stream>
net::awaitable<void> handle_control(Stream& stream, server_state& state, const boost::urls::url_view& url,
                                    bool keep_alive) {
    auto path = std::string(url.path());
    std::string refusal;
    try {
        if (path == "/_control/stats") {
            co_await send(stream, http::status::ok, "application/json", stats_json(state), keep_alive);
        } else if (path == "/_control/reset") {
            state.reset_stats();
            state.queued.clear();
            co_await send(stream, http::status::ok, "application/json", "{}", keep_alive);
        } else if (path == "/_control/fault") {
            queued_fault fault;
            fault.spec = parse_fault(param(url, "spec").value_or(""));
            fault.customer = param(url, "customer").value_or("");
            fault.remaining = static_cast<unsigned>(std::stoul(param(url, "count").value_or("1")));
            state.queued.push_back(std::move(fault));
            co_await send(stream, http::status::ok, "application/json", "{}", keep_alive);
        } else if (path == "/_control/network") {
            if (auto latency = param(url, "latency"))
                state.latency = std::chrono::milliseconds(std::stoul(*latency));
            if (auto bandwidth = param(url, "bandwidth")) state.bandwidth = comeback::parse_size(*bandwidth);
            co_await send(stream, http::status::ok, "application/json", "{}", keep_alive);
        } else if (path == "/_control/chaos") {
            state.chaos = param(url, "on").value_or("1") != "0";
            state.attempts_by_target.clear();
            co_await send(stream, http::status::ok, "application/json", "{}", keep_alive);
        } else if (path == "/_control/generation") {
            state.data_options.generation = static_cast<unsigned>(std::stoul(param(url, "value").value_or("0")));
            state.data = std::make_shared<const fake::dataset>(state.data_options);
            state.indexes.clear();
            state.cache.clear();
            state.cache_bytes = 0;
            co_await send(stream, http::status::ok, "application/json", "{}", keep_alive);
        } else if (path == "/_control/dump") {
            const std::shared_ptr<const fake::dataset> held = state.data;  // for the whole dump
            const auto& data = *held;
            std::size_t customer = 0, slot = 0;
            bool header = true;
            co_await send_chunked(stream, "text/csv; charset=utf-8", keep_alive, fault_spec{},
                                  [&](std::string& out) {
                                      if (header) {
                                          out += fake::dataset::csv_header();
                                          header = false;
                                      }
                                      while (customer < data.options().customers.size()) {
                                          if (slot >= data.slot_count(customer)) {
                                              ++customer;
                                              slot = 0;
                                              continue;
                                          }
                                          if (auto row = data.row(customer, slot++)) {
                                              data.append_csv(*row, out);
                                              return true;
                                          }
                                      }
                                      return false;
                                  });
        } else {
            co_await send(stream, http::status::not_found, "application/json",
                          json_message("unknown control endpoint " + path), keep_alive);
        }
    } catch (const std::invalid_argument& error) {
        // Thrown by parse_fault and std::stoul before anything was written.
        refusal = error.what();
    }
    if (!refusal.empty())
        co_await send(stream, http::status::bad_request, "application/json", json_message(refusal), keep_alive);
}

// ---------------------------------------------------------------------------
// The report endpoint

std::optional<date::local_time<std::chrono::microseconds>> parse_local(std::string_view text) {
    std::istringstream in{std::string(text)};
    date::local_time<std::chrono::microseconds> value;
    in >> date::parse("%FT%T", value);
    if (in.fail()) return std::nullopt;
    return value;
}

// Answers one report request; returns false when the connection must be closed.
template <class Stream>
net::awaitable<bool> handle_report(Stream& stream, server_state& state, pacer& link,
                                   const http::request<http::string_body>& request,
                                   const boost::urls::url_view& url, bool keep_alive, int& status_seen) {
    auto respond = [&](http::status status, std::string body,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
        status_seen = static_cast<int>(status);
        return send(stream, status, "application/json; charset=utf-8", std::move(body), keep_alive, headers);
    };

    // Route: /Report/Task/{customerId}/Comeback, the id decoded as one segment.
    std::vector<std::string> segments;
    for (auto segment : url.segments()) segments.emplace_back(segment);
    if (segments.size() != 4 || segments[0] != "Report" || segments[1] != "Task" || segments[3] != "Comeback") {
        co_await respond(http::status::not_found, json_message("No HTTP resource was found that matches the request URI."));
        co_return keep_alive;
    }
    const std::string customer = segments[2];

    // Faults: per request (header or query), then queued by /_control/fault,
    // then --fault, then chaos.
    std::optional<fault_spec> fault;
    std::string fault_text;
    if (auto it = request.find("X-Fake-Vitec-Fault"); it != request.end()) fault_text = std::string(it->value());
    else if (auto text = param(url, "fault")) fault_text = *text;
    std::string refusal;
    try {
        if (!fault_text.empty()) fault = parse_fault(fault_text);
    } catch (const std::invalid_argument& error) {
        refusal = error.what();
    }
    if (!refusal.empty()) {
        co_await respond(http::status::bad_request, json_message(refusal));
        co_return keep_alive;
    }
    if (!fault) {
        for (auto it = state.queued.begin(); it != state.queued.end(); ++it) {
            if (!it->customer.empty() && it->customer != customer) continue;
            fault = it->spec;
            if (--it->remaining == 0) state.queued.erase(it);
            break;
        }
    }
    if (!fault && state.every_request_fault) fault = state.every_request_fault;
    if (!fault && state.chaos) {
        if (state.attempts_by_target[std::string(request.target())]++ == 0)
            fault = parse_fault(chaos_faults[state.chaos_count++ % chaos_faults.size()]);
    }
    const fault_spec active = fault.value_or(fault_spec{});

    // A timer, never a blocking sleep: other requests go on meanwhile.
    if (const auto delay = state.latency + active.latency; delay > 0ms) {
        net::steady_timer timer(co_await net::this_coro::executor, delay);
        co_await timer.async_wait(net::use_awaitable);
    }
    if (active.reset) {
        status_seen = 0;
        reset_connection(stream);
        co_return false;
    }

    // Basic auth, then access.
    auto authorization = std::string(request[http::field::authorization]);
    std::string user, password;
    if (authorization.size() > 6 && (authorization.starts_with("Basic ") || authorization.starts_with("basic "))) {
        auto decoded = decode_base64(authorization.substr(6));
        auto colon = decoded.find(':');
        if (colon != std::string::npos) {
            user = decoded.substr(0, colon);
            password = decoded.substr(colon + 1);
        }
    }
    auto expected = state.passwords.find(customer);
    const std::string& expected_password =
        expected != state.passwords.end() ? expected->second : state.default_password;
    bool user_ok = !state.username || user == *state.username;
    if (!user_ok || password != expected_password || state.unauthorized.contains(customer) || user.empty()) {
        std::vector<std::pair<std::string, std::string>> challenge;
        challenge.emplace_back("WWW-Authenticate", std::string("Basic realm=\"fake-vitec\""));
        co_await respond(http::status::unauthorized,
                         json_message("Authorization has been denied for this request."), challenge);
        co_return keep_alive;
    }
    bool known = state.fixture_dir ? std::filesystem::is_regular_file(*state.fixture_dir / (customer + ".json")) &&
                                         customer.find('/') == std::string::npos
                                   : state.data->customer_index(customer).has_value();
    if (!known || state.forbidden.contains(customer)) {
        co_await respond(http::status::forbidden, json_message("Access to customer " + customer + " is denied."));
        co_return keep_alive;
    }

    // A configured status answers before the query is looked at.
    if (active.status && *active.status != 200) {
        std::vector<std::pair<std::string, std::string>> headers;
        if (active.retry_after) headers.emplace_back("Retry-After", *active.retry_after);
        auto message = active.message.value_or("fake-vitec: injected status " + std::to_string(*active.status));
        if (active.echo_auth) message += " (received " + authorization + ", password " + password + ")";
        co_await respond(static_cast<http::status>(*active.status), json_message(message), headers);
        co_return keep_alive;
    }
    if (active.html) {
        status_seen = 200;
        co_await send(stream, http::status::ok, "text/html; charset=utf-8",
                      "<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Vitec Connect "
                      "is being updated</h1></body></html>",
                      keep_alive);
        co_return keep_alive;
    }
    if (active.object) {
        status_seen = 200;
        co_await send(stream, http::status::ok, "application/json; charset=utf-8",
                      json_message("an object where an array belongs"), keep_alive);
        co_return keep_alive;
    }
    if (active.empty) {
        status_seen = 200;
        co_await send(stream, http::status::ok, "application/json; charset=utf-8", "[]", keep_alive);
        co_return keep_alive;
    }
    if (active.invalid_json) {
        status_seen = 200;
        co_await send(stream, http::status::ok, "application/json; charset=utf-8",
                      "[{\"id\": \"broken\", \"contact\": {\"id\": 1,, oops}]", keep_alive);
        co_return keep_alive;
    }

    // The query: from and to inclusive, local wall-clock time; date picks the field.
    auto from_text = param(url, "from"), to_text = param(url, "to");
    auto criterion_text = param(url, "date").value_or("Occurrence");
    auto from = from_text ? parse_local(*from_text) : std::nullopt;
    auto to = to_text ? parse_local(*to_text) : std::nullopt;
    auto criterion = fake::parse_date_criterion(criterion_text);
    if (!from || !to || !criterion) {
        std::string what = !from ? "from" : !to ? "to" : "date";
        std::string value = !from ? from_text.value_or("") : !to ? to_text.value_or("") : criterion_text;
        co_await respond(http::status::bad_request,
                         "{\"message\":\"The request is invalid.\",\"modelState\":{\"" + what +
                             "\":[\"The value '" + value + "' is not valid for " + what + ".\"]}}");
        co_return keep_alive;
    }

    // Like Vitec, JSON only for those who ask for it; everyone else gets XML.
    if (std::string_view(request[http::field::accept]).find("json") == std::string_view::npos) {
        status_seen = 200;
        co_await send(stream, http::status::ok, "application/xml; charset=utf-8",
                      "<ArrayOfComebackTaskReportRow xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"/>",
                      keep_alive);
        co_return keep_alive;
    }

    status_seen = 200;
    if (state.fixture_dir) {
        std::ifstream in(*state.fixture_dir / (customer + ".json"), std::ios::binary);
        std::ostringstream body;
        body << in.rdbuf();
        auto text = body.str();
        std::size_t offset = 0;
        bool whole = co_await send_chunked(stream, "application/json; charset=utf-8", keep_alive, active,
                                           [&](std::string& out) {
                                               auto piece = std::min<std::size_t>(text.size() - offset, 4096);
                                               out.append(text, offset, piece);
                                               offset += piece;
                                               return offset < text.size();
                                           }, &link);
        co_return whole && keep_alive;
    }

    // A body generated before is sent from the cache, in pieces of the same size.
    std::string cache_key;
    if (state.cache_limit > 0) {
        cache_key = customer + '\n' + criterion_text + '\n' + *from_text + '\n' + *to_text;
        if (auto cached = state.cache.find(cache_key); cached != state.cache.end()) {
            ++state.cache_hits;
            const std::shared_ptr<const std::string> body = cached->second;
            bool whole = co_await send_chunked(stream, "application/json; charset=utf-8", keep_alive, active,
                                               std::string_view(*body), &link);
            co_return whole && keep_alive;
        }
    }

    // Held until the body is sent: the generation may change meanwhile.
    const std::shared_ptr<const fake::dataset> held = state.data;
    const auto& data = *held;
    const std::size_t index = *data.customer_index(customer);
    auto found = state.indexes.find({index, *criterion});
    if (found == state.indexes.end())
        found = state.indexes.emplace(std::pair{index, *criterion}, fake::date_index(data, index, *criterion)).first;
    // Slot numbers only (4 bytes a row); each row is generated as it is sent.
    const std::vector<std::uint32_t> slots = found->second.slots(*from, *to);
    std::size_t next = 0;
    bool opened = false;
    // The body as it is generated, while it still fits the cache.
    std::optional<std::string> keep;
    if (state.cache_limit > state.cache_bytes) keep.emplace();
    const unsigned generation = state.data_options.generation;
    bool whole = co_await send_chunked(stream, "application/json; charset=utf-8", keep_alive, active,
                                       [&](std::string& out) {
                                           const std::size_t before = out.size();
                                           bool more = true;
                                           if (!opened) {
                                               out += '[';
                                               opened = true;
                                           }
                                           if (next < slots.size()) {
                                               if (next > 0) out += ',';
                                               data.append_json(*data.row(index, slots[next++]), out);
                                           } else {
                                               out += ']';
                                               more = false;
                                           }
                                           if (keep) {
                                               keep->append(out, before);
                                               if (keep->size() > state.cache_limit - state.cache_bytes) keep.reset();
                                           }
                                           return more;
                                       }, &link);
    // Kept only when whole, and only for the generation it was made from
    // (the generation may change while a body is sent).
    if (whole && keep && !active.truncate && generation == state.data_options.generation &&
        keep->size() <= state.cache_limit - state.cache_bytes) {
        const std::size_t size = keep->size();
        if (state.cache.emplace(cache_key, std::make_shared<const std::string>(std::move(*keep))).second)
            state.cache_bytes += size;
    }
    co_return whole && keep_alive;
}

template <class Stream>
net::awaitable<void> serve(Stream& stream, server_state& state) {
    beast::flat_buffer buffer;
    pacer link(state.bandwidth);
    bool counted = false;  // connections are counted once they carry a report request
    for (;;) {
        http::request<http::string_body> request;
        auto [error, n] = co_await http::async_read(stream, buffer, request, net::as_tuple(net::use_awaitable));
        if (error) co_return;  // the client closed the connection or sent garbage
        auto parsed = boost::urls::parse_origin_form(request.target());
        bool keep_alive = request.keep_alive();
        if (!parsed) {
            co_await send(stream, http::status::bad_request, "application/json", json_message("bad request target"), false);
            co_return;
        }
        const auto& url = *parsed;
        if (url.path().starts_with("/_control/")) {
            co_await handle_control(stream, state, url, keep_alive);
            if (!keep_alive) co_return;
            continue;
        }
        in_flight_guard guard(state, std::string(url.encoded_path()));
        if (!counted) ++state.connections;
        counted = true;
        ++state.requests;
        ++state.user_agents[std::string(request[http::field::user_agent])];
        int status = 0;
        bool keep = false;
        try {
            keep = co_await handle_report(stream, state, link, request, url, keep_alive, status);
        } catch (...) {
            ++state.by_path[std::string(url.encoded_path())][status];
            throw;
        }
        ++state.by_path[std::string(url.encoded_path())][status];
        if (!keep) co_return;
    }
}

net::awaitable<void> plain_session(tcp::socket socket, server_state& state) {
    beast::tcp_stream stream(std::move(socket));
    try {
        co_await serve(stream, state);
    } catch (const std::exception&) {
        // The client went away mid-response; nothing to tell anyone.
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

net::awaitable<void> tls_session(tcp::socket socket, ssl::context& context, server_state& state) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), context);
    try {
        beast::get_lowest_layer(stream).expires_after(10s);
        co_await stream.async_handshake(ssl::stream_base::server, net::use_awaitable);
        beast::get_lowest_layer(stream).expires_never();
        co_await serve(stream, state);
        beast::get_lowest_layer(stream).expires_after(2s);
        co_await stream.async_shutdown(net::use_awaitable);
    } catch (const std::exception&) {
        // A failed handshake is what the TLS tests expect; a client that closes
        // without close_notify (stream_truncated) is common and harmless.
    }
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, server_state& state, ssl::context* tls) {
    for (;;) {
        auto socket = co_await acceptor.async_accept(net::use_awaitable);
        // As production HTTP servers do: a response's head and body go out as
        // separate writes, and with Nagle's algorithm the body waited for the
        // client's delayed ACK of the head, about 40 ms a response on every
        // reused connection.
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto executor = acceptor.get_executor();
        if (tls)
            net::co_spawn(executor, tls_session(std::move(socket), *tls, state), net::detached);
        else
            net::co_spawn(executor, plain_session(std::move(socket), state), net::detached);
    }
}

// One id a line; blank lines and spaces around an id are ignored.
std::vector<std::string> read_list_file(const std::string& path, const char* option) {
    std::ifstream in(path);
    if (!in) throw std::invalid_argument(std::string(option) + " '" + path + "' cannot be read");
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos) continue;
        out.push_back(line.substr(first, line.find_last_not_of(" \t\r") - first + 1));
    }
    return out;
}

std::vector<std::string> split_list(const std::vector<std::string>& items) {
    std::vector<std::string> out;
    for (const auto& item : items) {
        std::string part;
        std::istringstream in(item);
        while (std::getline(in, part, ',')) if (!part.empty()) out.push_back(part);
    }
    return out;
}

date::local_days parse_day(const std::string& text, const char* option) {
    std::istringstream in(text);
    date::local_days day;
    in >> date::parse("%F", day);
    if (in.fail()) throw std::invalid_argument(std::string(option) + " '" + text + "' is not a YYYY-MM-DD date");
    return day;
}

void dump(const fake::dataset& data, std::ostream& out) {
    std::string buffer(fake::dataset::csv_header());
    for (std::size_t customer = 0; customer < data.options().customers.size(); ++customer) {
        for (std::size_t slot = 0; slot < data.slot_count(customer); ++slot) {
            if (auto row = data.row(customer, slot)) data.append_csv(*row, buffer);
            if (buffer.size() > (1 << 20)) {
                out << buffer;
                buffer.clear();
            }
        }
    }
    out << buffer << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "fake-vitec: serves Vitec Connect's comeback report (GET /Report/Task/{customerId}/Comeback)\n"
        "from a deterministic generated data set or fixture files, on 127.0.0.1, with fault injection.\n"
        "Control endpoints (no auth): GET /_control/stats, POST /_control/reset,\n"
        "POST /_control/fault?spec=S&count=N&customer=C, POST /_control/chaos?on=1|0,\n"
        "POST /_control/generation?value=K, POST /_control/network?latency=MS&bandwidth=RATE, GET /_control/dump.\n"
        "Per request: header X-Fake-Vitec-Fault: S or query parameter fault=S.\n"
        "Fault specs S are comma-separated: status=N, retry-after=V, message=TEXT, latency=MS, stall=MS,\n"
        "truncate=BYTES, reset, invalid-json, html, object, empty, echo-auth, content-length.\n"
        "Network conditions (--latency, --bandwidth) apply to every report request on top of any fault;\n"
        "both wait on timers, so one server keeps thousands of slow requests in flight."};
    std::uint16_t port = 0;
    std::string port_file, tls_cert, tls_key, fixture, from = "2024-01-01", to = "2024-12-31";
    std::string username, default_password, fault, customers_file, bandwidth = "0", cache_bodies = "0";
    unsigned latency_ms = 0;
    std::vector<std::string> customers_args{"M1"}, password_args, unauthorized_args, forbidden_args;
    fake::dataset_options options;
    bool chaos = false, do_dump = false;
    app.add_option("--port", port, "port on 127.0.0.1 (0: any free port)")->capture_default_str();
    app.add_option("--port-file", port_file, "write the chosen port here once listening");
    app.add_option("--tls-cert", tls_cert, "PEM certificate (chain): serve HTTPS");
    app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
    app.add_option("--seed", options.seed, "data set seed")->capture_default_str();
    app.add_option("--customers", customers_args, "customer ids, comma-separated")->capture_default_str();
    app.add_option("--customers-file", customers_file,
                   "customer ids, one a line (with --customers: both lists; alone: replaces the default M1)");
    app.add_option("--rows-per-customer", options.rows_per_customer, "rows per customer in generation 0")
        ->capture_default_str();
    app.add_option("--from", from, "first local day of occursAt (YYYY-MM-DD)")->capture_default_str();
    app.add_option("--to", to, "last local day of occursAt (YYYY-MM-DD, inclusive)")->capture_default_str();
    app.add_flag("--nasty", options.nasty, "hostile names and nulls at every level");
    app.add_option("--generation", options.generation, "data set generation (changes the data)")
        ->capture_default_str();
    app.add_option("--timezone", options.timezone, "zone of from/to and offset-less dates")->capture_default_str();
    app.add_option("--fixture", fixture, "serve DIR/<customerId>.json as is instead of generated data");
    app.add_option("--username", username, "required Basic auth user name (default: any)");
    app.add_option("--password", password_args, "CUSTOMER=SECRET, a customer's password (repeatable)");
    app.add_option("--default-password", default_password, "password of customers without --password");
    app.add_option("--unauthorized", unauthorized_args, "customers always answered 401 (comma-separated)");
    app.add_option("--forbidden", forbidden_args, "customers always answered 403 (comma-separated)");
    app.add_option("--fault", fault, "fault spec applied to every report request");
    app.add_option("--latency", latency_ms, "milliseconds every report request waits before its head")
        ->capture_default_str();
    app.add_option("--bandwidth", bandwidth,
                   "body bytes per second per connection, e.g. 20MB (kB/MB/GB: powers of 1000, KiB/MiB/GiB: "
                   "of 1024); 0: unlimited")
        ->capture_default_str();
    app.add_option("--cache-bodies", cache_bodies,
                   "keep generated bodies up to this many bytes in all (e.g. 1GiB) and send repeated requests "
                   "from memory; 0: off")
        ->capture_default_str();
    app.add_flag("--chaos", chaos, "the first attempt at each URL fails, each time in another way");
    app.add_flag("--dump", do_dump, "print the data set as CSV (comeback_report view columns) and exit");
    CLI11_PARSE(app, argc, argv);

    try {
        server_state state;
        if (!customers_file.empty()) {
            options.customers = app.count("--customers") ? split_list(customers_args) : std::vector<std::string>{};
            for (auto& id : read_list_file(customers_file, "--customers-file")) options.customers.push_back(std::move(id));
        } else {
            options.customers = split_list(customers_args);
        }
        state.latency = std::chrono::milliseconds(latency_ms);
        auto size_option = [](const std::string& text, const char* option) {
            try {
                return comeback::parse_size(text);
            } catch (const std::invalid_argument&) {
                throw std::invalid_argument(std::string(option) + " '" + text +
                                            "' is not a size (e.g. 20MB, 512KiB, 1GiB or bytes)");
            }
        };
        state.bandwidth = size_option(bandwidth, "--bandwidth");
        state.cache_limit = size_option(cache_bodies, "--cache-bodies");
        options.from = parse_day(from, "--from");
        options.to = parse_day(to, "--to");
        state.data_options = options;
        state.data = std::make_shared<const fake::dataset>(options);
        if (do_dump) {
            dump(*state.data, std::cout);
            return 0;
        }
        if (!fixture.empty()) {
            if (!std::filesystem::is_directory(fixture))
                throw std::invalid_argument("--fixture '" + fixture + "' is not a directory");
            state.fixture_dir = fixture;
        }
        if (!username.empty()) state.username = username;
        state.default_password = default_password;
        for (const auto& item : password_args) {
            auto eq = item.find('=');
            if (eq == std::string::npos) throw std::invalid_argument("--password needs CUSTOMER=SECRET");
            state.passwords[item.substr(0, eq)] = item.substr(eq + 1);
        }
        for (const auto& id : split_list(unauthorized_args)) state.unauthorized.insert(id);
        for (const auto& id : split_list(forbidden_args)) state.forbidden.insert(id);
        if (!fault.empty()) state.every_request_fault = parse_fault(fault);
        state.chaos = chaos;

        net::io_context io;
        std::optional<ssl::context> tls;
        if (!tls_cert.empty() || !tls_key.empty()) {
            if (tls_cert.empty() || tls_key.empty())
                throw std::invalid_argument("--tls-cert and --tls-key go together");
            tls.emplace(ssl::context::tls_server);
            tls->use_certificate_chain_file(tls_cert);
            tls->use_private_key_file(tls_key, ssl::context::pem);
        }
        tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
        const auto chosen = acceptor.local_endpoint().port();
        if (!port_file.empty()) {
            // Written whole, then renamed, so a reader never sees half a number.
            auto temporary = port_file + ".tmp";
            std::ofstream(temporary) << chosen << "\n";
            std::filesystem::rename(temporary, port_file);
        }
        std::cerr << "fake-vitec listening on " << (tls ? "https" : "http") << "://127.0.0.1:" << chosen << "\n";
        net::co_spawn(io, accept_loop(acceptor, state, tls ? &*tls : nullptr), net::detached);
        net::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](auto, auto) { io.stop(); });
        io.run();
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "fake-vitec: " << error.what() << "\n";
        return 2;
    }
}
