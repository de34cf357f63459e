#pragma once
// The Vitec Connect client: one GET of the comeback report for one customer
// and one window, streamed into a sink as it arrives. HTTPS with peer and
// host-name verification, keep-alive connections reused, one deadline per
// request, and a limiter shared by every fetch of one client (bounded
// concurrency plus a request-rate cap, shared fairly between customers).
//
// Threading: a client and everything it hands out is used from one thread at a
// time (a single-threaded io_context, or a strand passed as the executor).

#include "config/config.hpp"
#include "config/secret.hpp"
#include "fetch/outcome.hpp"
#include "model/wait_stats.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace comeback {

struct window_request {
    std::string customer_id;
    const secret* password = nullptr;  // the customer's password; not owned, must outlive fetch()
    std::string from;                  // sent as is, e.g. "2024-01-01T00:00:00" (local time)
    std::string to;
    std::string date_criteria;         // e.g. "Occurrence"
};

// Receives the body as it arrives. May co_await (e.g. a bounded queue) for back-pressure.
// Throwing comeback::response_error (etl/parse/response_parser.hpp) marks the response broken;
// any other exception propagates out of fetch() (the connection is dropped).
using body_sink = std::function<boost::asio::awaitable<void>(std::string_view chunk)>;

// Optional, beside a sink: where the sink would keep the next bytes of the
// body (at most the count asked for; empty: nowhere). The client then reads a
// body of announced length from the socket straight into that memory and
// hands the sink a chunk that lies in it, so the sink keeps it without a
// copy. Asked again before every read.
using body_room = std::function<std::span<char>(std::size_t wanted)>;

struct fetch_result {
    std::optional<comeback::failure> failure;  // empty: the whole body reached the sink
    int http_status = 0;                       // 0 when no response head was read
    std::uint64_t bytes = 0;                   // body bytes handed to the sink
    std::chrono::milliseconds duration{0};     // from the limiter's grant to the end

    bool ok() const { return !failure.has_value(); }
    // The failure's kind; empty when ok().
    std::optional<failure_kind> kind() const {
        return failure ? std::optional(failure->kind) : std::nullopt;
    }
};

class vitec_client {
public:
    // Takes base_url as etl/config parsed and checked it (the http/loopback
    // rule included). Throws std::invalid_argument when the CA certificates
    // (vitec.ca_file or the system store) cannot be loaded. Keeps a copy of the
    // configuration.
    vitec_client(boost::asio::any_io_executor executor, const vitec_config& config);
    ~vitec_client();
    vitec_client(const vitec_client&) = delete;
    vitec_client& operator=(const vitec_client&) = delete;

    // One attempt, no retries (fetch/retry.hpp drives those). Waits for the
    // shared limiter first. Every outcome is a fetch_result (see outcome.hpp
    // for the kinds); throws only what the sink throws other than
    // response_error, and std::bad_alloc.
    boost::asio::awaitable<fetch_result> fetch(const window_request& request,
                                               const body_sink& sink, const body_room& room = {});

    // The request target for a window, e.g.
    // "/Report/Task/M1/Comeback?from=...&to=...&date=Occurrence" (with the base
    // URL's path in front). The customer id is percent-encoded as one segment.
    std::string target_for(const window_request& request) const;

    // Connections opened so far (keep-alive reuse shows as fewer of them).
    std::uint64_t connections_opened() const;

    // Counts the requests waiting for their start at the client's limiter,
    // and their waits, into `stats` (model/wait_stats.hpp).
    void count_request_starts(std::shared_ptr<wait_stats> stats);

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace comeback
