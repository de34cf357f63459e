#pragma once
// Finds where each element of the top-level array begins and ends, across
// chunks, and keeps the current element's text (capped). The JSON
// parser's events carry no positions, so a rejection's raw text comes from here.
// It trusts the JSON parser to report malformed input; on such input its state
// is meaningless, and the response is abandoned anyway.

#include <cstddef>
#include <string>
#include <string_view>

namespace comeback::detail {

class element_scanner {
public:
    explicit element_scanner(std::size_t max_raw_bytes) : max_raw_bytes_(max_raw_bytes) {}

    // Scans `data` up to and including the byte that ends the current element
    // (for a bare number or literal, the delimiter after it), or to its end.
    // Returns how many bytes were scanned: feed exactly those to the JSON parser,
    // and its end-of-element event will see raw() complete.
    std::size_t scan(std::string_view data);

    // The current (or last ended) element's text, at most max_raw_bytes bytes.
    const std::string& raw() const { return raw_; }
    // True when raw() lost bytes to the cap.
    bool raw_truncated() const { return truncated_; }

private:
    // Inside an element, strings and brackets are found a block at a time: most
    // of a body is short strings, too many per element to look at byte by byte.
    static constexpr std::ptrdiff_t block_bytes = 64;

    // Reads the block_bytes bytes at `block` as the byte-by-byte scan would,
    // within an element (depth 2 or more, not after a backslash). Returns where
    // the scan goes on: after the block, or after the element's end in it
    // (depth 1 again). Returns nullptr, and changes nothing, when the block
    // holds a backslash: escapes go byte by byte.
    const char* read_block(const char* block);
    void start_element(const char* at);
    void keep(const char* from, const char* to);

    std::size_t max_raw_bytes_;
    std::string raw_;
    bool truncated_ = false;
    const char* kept_from_ = nullptr;  // within the data being scanned
    int depth_ = 0;                    // 1 inside the top-level array
    bool in_element_ = false;
    bool in_string_ = false;
    bool in_escape_ = false;  // a backslash ended the previous chunk
    bool in_bare_ = false;    // a number or literal directly in the top-level array
};

}  // namespace comeback::detail
