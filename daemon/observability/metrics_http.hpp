#pragma once
// How the metrics server reads one request and answers it, apart from the
// socket. The server and its fuzz target (tests/fuzz) run this same code on
// whatever bytes a client sends. Beast's message types appear here, so only
// metrics_server.cpp and the fuzz target include this header.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace comeback {

class metrics_registry;

// The status page for a request target ("/?page=2"), as a whole HTML
// document. Called on the server's strand: it must not block.
using status_page_source = std::function<std::string(std::string_view target)>;

namespace metrics_http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;
using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// A scrape is a request line and a few headers; it never needs a body. A
// request over these fails to read and its connection is dropped, so a client
// cannot make the server hold more than this per connection.
inline constexpr std::size_t max_header_bytes = 8 * 1024;
inline constexpr std::size_t max_body_bytes = 1024;

// Sets the limits above on a parser about to read a request.
void apply_limits(request_parser& parser);

// The answer to one request: GET or HEAD of /metrics or /healthz, 404 for
// other paths, 405 for other methods (metrics_server.hpp). A HEAD answer has
// GET's headers and no body. Throws nothing but std::bad_alloc.
// Without `status_page`, GET / is 404 like any unknown path.
response answer(const request& request, const metrics_registry& registry,
                const status_page_source& status_page = {});

}  // namespace metrics_http
}  // namespace comeback
