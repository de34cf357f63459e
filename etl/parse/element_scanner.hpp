#pragma once
// Finds where each element of the top-level array begins and ends, across
// chunks, and keeps each element's text (capped). The JSON parser's events
// carry no positions, so a rejection's raw text comes from here.
// It trusts the JSON parser to report malformed input; on such input its state
// is meaningless, and the response is abandoned anyway.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace comeback::detail {

// One 64-byte block of a body, bit i standing for its byte i.
struct block_bits {
    std::uint64_t quotes = 0;
    std::uint64_t backslashes = 0;
    std::uint64_t opens = 0;       // '{' or '['
    std::uint64_t closes = 0;      // '}' or ']'
    std::uint64_t separators = 0;  // ',' or ':'
    // The parity of the quotes up to each byte: from an opening quote up to,
    // not including, its closing one, when the block begins outside a string.
    std::uint64_t quoted = 0;

    friend bool operator==(const block_bits&, const block_bits&) = default;
};

// How a block is read: with 16-byte steps, which every x86-64 CPU can take, or
// with 32-byte steps (AVX2 and PCLMULQDQ) where the CPU has them; elsewhere
// `wide` reads narrow. Both give the same bits; the choice is exposed so that a
// test can hold them to that.
enum class block_reading { narrow, wide };
block_bits classify_block(const char* block, block_reading how);
// Whether `wide` takes 32-byte steps on this CPU.
bool cpu_reads_wide_blocks();

class element_scanner {
public:
    explicit element_scanner(std::size_t max_raw_bytes) : max_raw_bytes_(max_raw_bytes) {}

    // Scans `data` up to the end of an element the JSON parser must be stopped
    // after (see must_stop_after), or to its end. Returns how many bytes were
    // scanned: feed exactly those to the JSON parser, and each of its
    // end-of-element events can take_raw() that element's text.
    std::size_t scan(std::string_view data);

    // The text of the oldest element ended in the last scan() and not yet
    // taken, at most max_raw_bytes bytes. Failing that, the text so far of
    // the element still open (a literal the JSON parser ended before this
    // scanner saw its delimiter), once; else empty. It may be a view of the
    // scanned data: valid until the next scan(), while that data is.
    std::string_view take_raw();

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
    // Queues the element that ends at `end` (exclusive) for take_raw().
    void end_element(const char* end);
    bool must_stop_after(const char* element_end) const;

    std::size_t max_raw_bytes_;
    std::string raw_;        // the text of an element begun in an earlier scan()
    std::string spanned_;    // that element's whole text once it has ended
    std::vector<std::string_view> ended_;  // elements ended in the last scan()
    std::size_t taken_ = 0;                 // of ended_
    const char* kept_from_ = nullptr;  // within the data being scanned
    const char* last_value_byte_ = nullptr;  // see must_stop_after
    bool begun_here_ = false;  // the current element began in this scan()
    bool taken_before_end_ = false;  // see take_raw()
    int depth_ = 0;            // 1 inside the top-level array
    bool in_element_ = false;
    bool in_string_ = false;
    bool in_escape_ = false;  // a backslash ended the previous chunk
    bool in_bare_ = false;    // a number or literal directly in the top-level array
};

}  // namespace comeback::detail
