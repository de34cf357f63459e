#pragma once
// The incremental reader of a comeback report response body. Sans-I/O: it is fed
// bytes as they arrive and hands on complete rows in bounded batches, so a
// response of any size is never held whole.

#include "model/comeback.hpp"
#include "model/failure.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string_view>

namespace date {
class time_zone;
}

namespace comeback {

// The body as a whole is unusable: not a JSON array, truncated, not JSON at all
// (kind broken_response), or one value in it longer than
// parser_options::max_field_bytes (kind field_too_large). Nothing of such a
// response may be committed.
class response_error : public std::runtime_error {
public:
    explicit response_error(const std::string& message,
                            failure_kind kind = failure_kind::broken_response)
        : std::runtime_error(message), kind_(kind) {}

    failure_kind kind() const { return kind_; }

private:
    failure_kind kind_;
};

struct parser_options {
    const date::time_zone* api_zone = nullptr;  // required: zone of offset-less timestamps
    std::size_t batch_rows = 2000;              // a batch is handed on at this many elements
                                                // (rows plus rejections); 0 reads as 1
    std::size_t max_raw_bytes = 64 * 1024;      // a rejection keeps at most this much raw text
    // One string, key or number token longer than this fails the body
    // (field_too_large), whether the field is kept or not: no token is ever
    // buffered beyond it. vitec.max_field_bytes; 0 reads as 1.
    std::size_t max_field_bytes = 1024 * 1024;
};

struct parse_summary {
    std::size_t elements = 0;  // array elements seen
    std::size_t rows = 0;      // elements read as rows
    std::size_t rejected = 0;  // elements rejected
    std::size_t bytes = 0;     // body bytes fed
};

class response_parser {
public:
    // Called with each full batch, and with the last partial one from finish().
    // The callee owns the batch. Exceptions from it propagate out of feed()/finish().
    using batch_sink = std::function<void(row_batch&&)>;

    // Throws std::invalid_argument when options.api_zone or the sink is missing.
    response_parser(parser_options options, batch_sink sink);
    ~response_parser();
    response_parser(const response_parser&) = delete;
    response_parser& operator=(const response_parser&) = delete;

    // Feeds the next bytes of the body. Throws response_error when the body can
    // no longer be a JSON array of elements, or a token is over max_field_bytes.
    void feed(std::string_view chunk);

    // Marks the end of the body, flushes the last batch and returns the counts.
    // Throws response_error when the array is not complete. After a response_error,
    // feed() and finish() throw it again.
    parse_summary finish();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// Convenience for tests and tools: parses a whole body in one call.
// Throws response_error like feed()/finish().
row_batch parse_response(std::string_view body, const date::time_zone& api_zone);

}  // namespace comeback
