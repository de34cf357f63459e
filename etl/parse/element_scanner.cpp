#include "parse/element_scanner.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Bit i becomes the parity of bits 0 to i. Of the quotes' bits, that marks the
// bytes from an opening quote up to, not including, its closing one.
std::uint64_t prefix_parity(std::uint64_t bits) {
    bits ^= bits << 1;
    bits ^= bits << 2;
    bits ^= bits << 4;
    bits ^= bits << 8;
    bits ^= bits << 16;
    bits ^= bits << 32;
    return bits;
}

#if defined(__x86_64__)
// Whether this CPU reads a block in two 32-byte steps and takes the quotes'
// parity in one carry-less multiplication. Decided once, at start-up: Debian
// builds for the x86-64 baseline (SSE2), which every CPU has.
bool cpu_has_wide_reading() {
    __builtin_cpu_init();  // static initializers may run before libgcc's own
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul");
}
const bool cpu_reads_wide = cpu_has_wide_reading();

// classify_block's reading in two 32-byte steps (AVX2), the parity by a
// carry-less multiplication by all ones (PCLMULQDQ).
[[gnu::target("avx2")]] std::uint64_t bits_of(__m256i matches) {
    return static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(matches)));
}

[[gnu::target("avx2,pclmul")]] block_bits classify_wide(const char* block) {
    block_bits bits;
    for (int part = 0; part < 2; ++part) {
        const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32 * part));
        const __m256i folded = _mm256_or_si256(bytes, _mm256_set1_epi8(0x20));
        const int shift = 32 * part;
        bits.quotes |= bits_of(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi8('"'))) << shift;
        bits.backslashes |= bits_of(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi8('\\'))) << shift;
        bits.opens |= bits_of(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8('{'))) << shift;
        bits.closes |= bits_of(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8('}'))) << shift;
        bits.separators |= bits_of(_mm256_or_si256(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(',')),
                                                   _mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(':'))))
                           << shift;
    }
    const __m128i all_ones = _mm_set1_epi8(static_cast<char>(0xFF));
    const __m128i product = _mm_clmulepi64_si128(
        _mm_set_epi64x(0, static_cast<long long>(bits.quotes)), all_ones, 0);
    bits.quoted = static_cast<std::uint64_t>(_mm_cvtsi128_si64(product));
    return bits;
}
#endif

// The position of the highest bit set in `bits` (not 0), from `block`.
const char* last_of(const char* block, std::uint64_t bits) {
    return block + 63 - std::countl_zero(bits);
}

// Boost.JSON reads some tokens through a fixed window when its buffer holds one
// (a literal's 4 or 5 bytes, a \u escape's 11, a number's 34), and else byte by
// byte: on malformed input the two fail at different bytes. Before elements
// were fed to it together, every element's end was the end of a buffer. So the
// parser is still stopped there whenever such a token may begin within this
// many bytes before it, and its errors name the same bytes as they did.
constexpr std::ptrdiff_t token_window = 40;

// Elements fed to the JSON parser in one piece at most: bounds ended_.
constexpr std::size_t max_elements_per_piece = 256;

}  // namespace

block_bits classify_block(const char* block, block_reading how) {
#if defined(__x86_64__)
    if (how == block_reading::wide && cpu_reads_wide) return classify_wide(block);
#endif
    block_bits bits;
#if defined(__SSE2__)
    const auto bits_of = [](__m128i matches) {
        return static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(matches)));
    };
    for (int part = 0; part < 4; ++part) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * part));
        // '[' and '{' differ only in bit 0x20, and so do ']' and '}'.
        const __m128i folded = _mm_or_si128(bytes, _mm_set1_epi8(0x20));
        const int shift = 16 * part;
        bits.quotes |= bits_of(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('"'))) << shift;
        bits.backslashes |= bits_of(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('\\'))) << shift;
        bits.opens |= bits_of(_mm_cmpeq_epi8(folded, _mm_set1_epi8('{'))) << shift;
        bits.closes |= bits_of(_mm_cmpeq_epi8(folded, _mm_set1_epi8('}'))) << shift;
        bits.separators |= bits_of(_mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(',')),
                                                _mm_cmpeq_epi8(bytes, _mm_set1_epi8(':'))))
                           << shift;
    }
#else
    for (int i = 0; i < 64; ++i) {
        const char c = block[i];
        const std::uint64_t bit = std::uint64_t{1} << i;
        if (c == '"') bits.quotes |= bit;
        if (c == '\\') bits.backslashes |= bit;
        if (c == '{' || c == '[') bits.opens |= bit;
        if (c == '}' || c == ']') bits.closes |= bit;
        if (c == ',' || c == ':') bits.separators |= bit;
    }
#endif
    bits.quoted = prefix_parity(bits.quotes);
    return bits;
}

bool cpu_reads_wide_blocks() {
#if defined(__x86_64__)
    return cpu_reads_wide;
#else
    return false;
#endif
}

const char* element_scanner::read_block(const char* block) {
    const block_bits bits = classify_block(block, block_reading::wide);
    if (bits.backslashes != 0) return nullptr;
    const std::uint64_t in_string = bits.quoted ^ (in_string_ ? ~std::uint64_t{0} : 0);
    // Outside strings, anything but quotes, brackets and separators may begin a
    // number or literal (whitespace too, here: that only stops the parser more often).
    const std::uint64_t value_bytes =
        ~(bits.quotes | bits.opens | bits.closes | bits.separators | in_string);
    for (std::uint64_t brackets = (bits.opens | bits.closes) & ~in_string; brackets != 0;
         brackets &= brackets - 1) {
        const int at = std::countr_zero(brackets);
        if ((bits.opens >> at & 1) != 0) {
            ++depth_;
        } else if (--depth_ == 1) {
            const std::uint64_t before = value_bytes & ((std::uint64_t{1} << at) - 1);
            if (before != 0) last_value_byte_ = last_of(block, before);
            in_string_ = false;
            return block + at + 1;
        }
    }
    if (value_bytes != 0) last_value_byte_ = last_of(block, value_bytes);
    in_string_ = (in_string >> 63) != 0;
    return block + block_bytes;
}

bool element_scanner::must_stop_after(const char* element_end) const {
    return !begun_here_ || ended_.size() + 1 >= max_elements_per_piece ||
           (last_value_byte_ != nullptr && element_end - last_value_byte_ <= token_window);
}

void element_scanner::end_element(const char* end) {
    in_element_ = false;
    if (std::exchange(taken_before_end_, false)) return;
    if (begun_here_) {
        const auto length = static_cast<std::size_t>(end - kept_from_);
        ended_.emplace_back(kept_from_, std::min(length, max_raw_bytes_));
        return;
    }
    keep(kept_from_, end);
    std::swap(raw_, spanned_);
    ended_.emplace_back(spanned_);
}

std::string_view element_scanner::take_raw() {
    if (taken_ < ended_.size()) return ended_[taken_++];
    // A literal directly in the array (true, false, null) ends for the JSON
    // parser at its last letter, and for this scanner at the delimiter after it,
    // which may come in a later chunk: its text so far is all of it.
    if (in_element_ && !taken_before_end_) {
        taken_before_end_ = true;
        return raw_;
    }
    return {};
}

void element_scanner::start_element(const char* at) {
    in_element_ = true;
    begun_here_ = true;
    kept_from_ = at;
}

void element_scanner::keep(const char* from, const char* to) {
    const auto length = static_cast<std::size_t>(to - from);
    const std::size_t room = max_raw_bytes_ - std::min(max_raw_bytes_, raw_.size());
    raw_.append(from, std::min(length, room));
}

std::size_t element_scanner::scan(std::string_view data) {
    const char* const begin = data.data();
    const char* const end = begin + data.size();
    const char* p = begin;
    kept_from_ = begin;
    begun_here_ = false;
    last_value_byte_ = nullptr;
    ended_.clear();
    taken_ = 0;
    const auto scanned = [&](const char* scanned_end) {
        return static_cast<std::size_t>(scanned_end - begin);
    };
    // The element that ends at `after` (exclusive) is queued; returns whether
    // the JSON parser must stop there.
    const auto element_ended = [&](const char* after) {
        const bool stop = must_stop_after(after);
        end_element(after);
        return stop;
    };

    // Within an element, a block without a backslash is read whole; all else
    // goes byte by byte, and both ways must agree.
    const char* bytewise_until = p;
    while (p < end) {
        if (depth_ >= 2 && !in_escape_ && p >= bytewise_until && end - p >= block_bytes) {
            if (const char* after = read_block(p)) {
                p = after;
                if (depth_ == 1 && element_ended(p)) return scanned(p);
                continue;
            }
            bytewise_until = p + block_bytes;
        }
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
                last_value_byte_ = p;  // an escape may be \uXXXX
                in_escape_ = true;
                ++p;
                continue;
            }
            in_string_ = false;
            ++p;
            if (depth_ == 1) {  // a bare string element
                end_element(p);
                return scanned(p);
            }
            continue;
        }
        const char c = *p;
        if (in_bare_) {
            if (c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                in_bare_ = false;
                if (c == ']') --depth_;
                // The delimiter goes to the JSON parser too: only it ends a number.
                end_element(p);
                return scanned(p + 1);
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
            if (depth_ == 1 && element_ended(p + 1)) return scanned(p + 1);
            break;
        case ',':
        case ':':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            break;
        default:
            last_value_byte_ = p;
            if (depth_ == 1) {
                start_element(p);
                in_bare_ = true;
            }
            break;
        }
        ++p;
    }
    if (in_element_) {
        if (begun_here_) raw_.clear();
        keep(kept_from_, end);
    }
    return data.size();
}

}  // namespace comeback::detail
