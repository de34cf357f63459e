#pragma once
// A server that answers the comeback report the way a hostile or broken peer
// would: endless framing, endless bodies, one byte a second, secrets echoed
// back. The client must fail each with the right kind, in bounded time and
// memory, and never repeat a secret. Plain HTTP on 127.0.0.1, one mode per
// server, every connection answered the same way; it never reads a response
// body's worth of memory itself (everything is generated as it is sent).
//
// Used in-process by the client's tests (tests/etl/fetch/hostile_peer_test.cpp)
// and as the `hostile-vitec` program by the end-to-end test with the real
// binary (tests/e2e/hostile_peer_test.sh).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace comeback::test {

enum class hostile_mode {
    endless_chunk_extension,  // 200, chunked, a chunk header "1;x=aaaa..." that never ends
    endless_trailer,          // 200, chunked, a complete body, then a trailer line that never ends
    endless_header,           // 200 and a header line that never ends
    announced_2gib,           // 200 with Content-Length: 2 GiB, then a body that never ends
    endless_chunked_body,     // 200, chunked, "[" and then whitespace chunks forever
    one_byte_per_second,      // a response head, one byte a second, forever
    echo_authorization,       // 400, JSON {"message": padding + the Authorization header received}
    echo_authorization_text,  // 400, text/plain: padding + the Authorization header received
    huge_string,              // 200, one element whose contact.name is `string_bytes` long
    slow_body,                // 200, chunked, "[" and then one byte a second, forever
    malformed_status,         // a status line that is not HTTP
    malformed_chunk,          // 200, chunked, a chunk size that is not hexadecimal
    redirect,                 // 302 to another server, which must not be followed
    empty_body,               // 200, application/json, Content-Length: 0
};

// The modes by name, as the command line and the tests spell them
// ("endless-chunk-extension", ...).
std::vector<std::pair<std::string_view, hostile_mode>> hostile_mode_names();
// Throws std::invalid_argument naming the known modes.
hostile_mode parse_hostile_mode(std::string_view name);

struct hostile_options {
    hostile_mode mode = hostile_mode::endless_header;
    std::size_t padding = 280;                     // bytes before the echoed header (echo modes)
    std::uint64_t string_bytes = 256ull << 20;     // huge_string's name
};

class hostile_vitec {
public:
    // Listens on 127.0.0.1 (port 0: any free one) and serves on a thread of its own.
    explicit hostile_vitec(hostile_options options, unsigned short port = 0);
    // Stops serving and joins the thread.
    ~hostile_vitec();
    hostile_vitec(const hostile_vitec&) = delete;
    hostile_vitec& operator=(const hostile_vitec&) = delete;

    unsigned short port() const;
    std::string url() const;  // http://127.0.0.1:PORT

    // Requests received so far (a request head read whole).
    std::uint64_t requests() const;
    // The Authorization header of the last request, as received.
    std::string last_authorization() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace comeback::test
