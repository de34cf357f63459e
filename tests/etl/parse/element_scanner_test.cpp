#include "parse/element_scanner.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <random>
#include <string>

using comeback::detail::block_bits;
using comeback::detail::block_reading;
using comeback::detail::classify_block;
using comeback::detail::cpu_reads_wide_blocks;

namespace {

// The bits of a block found one byte at a time: what every reading must give.
block_bits bits_by_bytes(const std::string& block) {
    block_bits bits;
    bool inside = false;
    for (std::size_t i = 0; i < 64; ++i) {
        const char c = block[i];
        const std::uint64_t bit = std::uint64_t{1} << i;
        if (c == '"') {
            bits.quotes |= bit;
            inside = !inside;
        }
        if (inside) bits.quoted |= bit;
        if (c == '\\') bits.backslashes |= bit;
        if (c == '{' || c == '[') bits.opens |= bit;
        if (c == '}' || c == ']') bits.closes |= bit;
        if (c == ',' || c == ':') bits.separators |= bit;
    }
    return bits;
}

// Blocks mostly of the bytes a block is read for, bytes one bit away from them
// (the brackets are found by folding bit 0x20), and high bytes.
std::string random_block(std::mt19937& random) {
    static constexpr std::string_view alphabet = "\"\\{}[],:;<>zZ|=#\x7F\x02\xA2\xDC\xFB aZ0\x80\xFF";
    std::string block(64, ' ');
    for (char& c : block) c = alphabet[random() % alphabet.size()];
    return block;
}

}  // namespace

TEST_CASE("a block reads the same in 16-byte steps, in 32-byte steps and byte by byte") {
    std::mt19937 random(7);
    if (!cpu_reads_wide_blocks()) WARN("this CPU has no AVX2 or PCLMULQDQ: the wide reading falls back to 16 bytes");
    for (int round = 0; round < 20000; ++round) {
        const std::string block = random_block(random);
        const block_bits expected = bits_by_bytes(block);
        INFO("block: " << block);
        REQUIRE(classify_block(block.data(), block_reading::narrow) == expected);
        REQUIRE(classify_block(block.data(), block_reading::wide) == expected);
    }
}

TEST_CASE("a block of one byte repeated, and with a quote at either end, reads right") {
    for (int value = 0; value < 256; ++value) {
        std::string block(64, static_cast<char>(value));
        for (const auto& variant : {block, "\"" + block.substr(1), block.substr(1) + "\""}) {
            INFO("byte " << value);
            REQUIRE(classify_block(variant.data(), block_reading::narrow) == bits_by_bytes(variant));
            REQUIRE(classify_block(variant.data(), block_reading::wide) == bits_by_bytes(variant));
        }
    }
}
