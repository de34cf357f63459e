#pragma once
// Cutting one fuzz input into the pieces a network read might deliver. The
// pieces follow from the input's own bytes, so a failing input reproduces.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <vector>

namespace comeback::fuzz {

// FNV-1a: a stable, well-mixed number from the input.
inline std::uint64_t digest(std::string_view data) {
    std::uint64_t hash = 1469598103934665603ull;
    for (unsigned char c : data) hash = (hash ^ c) * 1099511628211ull;
    return hash;
}

// Pieces of `data` in order, each 1 to a largest size that `seed` picks from
// single bytes up to a few KiB; empty pieces are slipped in too, as a reader
// may hand over nothing.
inline std::vector<std::string_view> split(std::string_view data, std::uint64_t seed) {
    constexpr std::size_t largest[] = {1, 2, 3, 7, 16, 64, 4096};
    const std::size_t cap = largest[seed % std::size(largest)];
    std::uint64_t state = seed | 1;
    const auto next = [&state] {  // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    std::vector<std::string_view> pieces;
    while (!data.empty()) {
        const std::uint64_t r = next();
        if (r % 29 == 0) pieces.push_back(data.substr(0, 0));
        const std::size_t size = std::min<std::size_t>(1 + (r >> 8) % cap, data.size());
        pieces.push_back(data.substr(0, size));
        data.remove_prefix(size);
    }
    return pieces;
}

}  // namespace comeback::fuzz
