#pragma once
// What the /metrics listener says to a client, without a socket: the bytes a
// client has sent so far on a connection in, the bytes to send back out. The
// server (metrics_server.cpp) answers every request through this function, so
// a test or a fuzz target that feeds it bytes exercises exactly what a client
// on the network meets.
//
// Served: GET or HEAD of
//   /metrics  200, text/plain; version=0.0.4, the registry rendered (its
//             render_shared: answers made while another sends one share it)
//   /healthz  200 "ok", or 503 with the reason (metrics.hpp has the rule)
//   /         200, the status page (HTML), when there is one
// A request is judged once its head is whole (its blank line received), from
// the head's bytes alone, so however the bytes arrive the answer is the same.
// Refused, each answered and the connection closed:
//   a request line and header fields over max_request_head_bytes   431
//   a request with a body (Content-Length > 0, or Transfer-Encoding)
//     413, the body never read
//   anything that is not an HTTP/1.x request head                    400
//   HTTP versions other than 1.0 and 1.1 (the line names another)  505
// and, the connection kept if the client wants it: other methods on a served
// path 405 (with Allow: GET, HEAD), other paths 404.

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace comeback {

class metrics_registry;

// The status page for a request target ("/?page=2"), as a whole HTML
// document. Called on the listener's thread: it must not block.
using status_page_source = std::function<std::string(std::string_view target)>;

// The most of a request the listener ever holds: the request line and every
// header field with their line ends, the blank line included.
inline constexpr std::size_t max_request_head_bytes = 8 * 1024;

struct http_reply {
    // false: `received` holds no blank line yet and is shorter than
    // max_request_head_bytes: read more. Every other field is then empty.
    bool complete = false;
    unsigned status = 0;       // 200, 400, 404, 405, 413, 431, 503 or 505
    std::string bytes;         // the response: status line, header fields, and body unless shared
    // The body when it is a /metrics render shared with other answers
    // (metrics_registry::render_shared): sent after `bytes`. Null otherwise,
    // and for HEAD.
    std::shared_ptr<const std::string> body;
    std::size_t consumed = 0;  // bytes of `received` this request took: its head
    bool close = false;        // close the connection once `bytes` and `body` are sent
    // Why the request was not served, in a few words (the body's text without
    // its newline); empty for 200 and 503, which answer what was asked.
    std::string refusal;
};

// Answers the request at the start of `received`: any bytes, of any length
// (only the first max_request_head_bytes are looked at). Bytes after the
// request's head are left for the next request (pipelining). Renders the
// registry for /metrics and /healthz; asks `status_page` for / (without one,
// / is 404 like any unknown path). Never throws, except std::bad_alloc and
// what `status_page` throws.
http_reply answer_http_request(std::string_view received, const metrics_registry& registry,
                               const status_page_source& status_page = {});

// One connection's requests without the socket: the bytes received and not
// yet answered, in a fixed buffer of max_request_head_bytes, and when to ask
// answer_http_request() about them. The server reads into it; the fuzz target
// feeds it the same way, so both run the same bookkeeping.
class request_reader {
public:
    // Where the next read goes. Never empty while no answer is due: a full
    // buffer always has one (431 at worst).
    std::span<char> free_space() { return std::span(buffer_).subspan(used_); }

    // `n` bytes were read into free_space(). The answer to the request at the
    // front once it is whole or refused, else nothing: read more. Looks only
    // when a line has ended or the buffer is full, so a client sending a byte
    // at a time costs one parse per line, not per byte.
    std::optional<http_reply> received(std::size_t n, const metrics_registry& registry,
                                       const status_page_source& status_page = {});

    // `reply` (from this reader) was sent and the connection stays: its
    // request leaves the buffer. The answer to a next request already here
    // whole (pipelined), if any; looks only when a line end is among the
    // bytes left, as received() does.
    std::optional<http_reply> answered(const http_reply& reply, const metrics_registry& registry,
                                       const status_page_source& status_page = {});

    // Bytes received and not yet answered.
    std::size_t pending() const { return used_; }

    // Forgets what was received: the buffer then only takes bytes to drop.
    void clear() { used_ = 0; }

private:
    std::optional<http_reply> look(const metrics_registry& registry, const status_page_source& status_page);

    std::array<char, max_request_head_bytes> buffer_;
    std::size_t used_ = 0;
};

}  // namespace comeback
