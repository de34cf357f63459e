#include "parse/element_scanner.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

namespace comeback::detail {
namespace {

// Bytes that are zero in `word` get their high bit set; the lowest set bit is exact.
std::uint64_t zero_bytes(std::uint64_t word) {
    return (word - 0x0101010101010101ULL) & ~word & 0x8080808080808080ULL;
}

// The first '"' or '\\' in [p, end), or end. Eight bytes per step, since this
// loop sees most of the body.
const char* find_quote_or_backslash(const char* p, const char* end) {
    while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, sizeof word);
        const std::uint64_t hits = zero_bytes(word ^ 0x2222222222222222ULL) |  // '"'
                                   zero_bytes(word ^ 0x5C5C5C5C5C5C5C5CULL);   // '\\'
        if (hits != 0) {
            // Little-endian: the lowest set bit belongs to the first matching byte.
            return p + std::countr_zero(hits) / 8;
        }
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\') ++p;
    return p;
}

}  // namespace

void element_scanner::start_element(const char* at) {
    in_element_ = true;
    raw_.clear();
    truncated_ = false;
    kept_from_ = at;
}

void element_scanner::keep(const char* from, const char* to) {
    const auto length = static_cast<std::size_t>(to - from);
    const std::size_t room = max_raw_bytes_ - std::min(max_raw_bytes_, raw_.size());
    if (length > room) truncated_ = true;
    raw_.append(from, std::min(length, room));
}

std::size_t element_scanner::scan(std::string_view data) {
    const char* const begin = data.data();
    const char* const end = begin + data.size();
    const char* p = begin;
    kept_from_ = begin;
    const auto element_ended = [&](const char* raw_end, const char* scanned_end) {
        keep(kept_from_, raw_end);
        in_element_ = false;
        return static_cast<std::size_t>(scanned_end - begin);
    };

    while (p < end) {
        if (in_escape_) {
            in_escape_ = false;
            ++p;
            continue;
        }
        if (in_string_) {
            // Most bytes of a response are inside strings: run through them.
            p = find_quote_or_backslash(p, end);
            if (p == end) break;
            if (*p == '\\') {
                in_escape_ = true;
                ++p;
                continue;
            }
            in_string_ = false;
            ++p;
            if (depth_ == 1) return element_ended(p, p);  // a bare string element
            continue;
        }
        const char c = *p;
        if (in_bare_) {
            if (c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                in_bare_ = false;
                if (c == ']') --depth_;
                // The delimiter goes to the JSON parser too: only it ends a number.
                return element_ended(p, p + 1);
            }
            ++p;
            continue;
        }
        switch (c) {
        case '"':
            if (depth_ == 1) start_element(p);
            in_string_ = true;
            break;
        case '{':
        case '[':
            if (depth_ == 1) start_element(p);
            ++depth_;
            break;
        case '}':
        case ']':
            --depth_;
            if (depth_ == 1) return element_ended(p + 1, p + 1);
            break;
        case ',':
        case ':':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            break;
        default:
            if (depth_ == 1) {
                start_element(p);
                in_bare_ = true;
            }
            break;
        }
        ++p;
    }
    if (in_element_) keep(kept_from_, end);
    return data.size();
}

}  // namespace comeback::detail
