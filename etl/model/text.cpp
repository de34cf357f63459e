#include "model/text.hpp"

#include <cstdint>
#include <cstring>

namespace comeback {
namespace {

constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at `p`, or 0 when the bytes there
// do not start one (Unicode 15, table 3-7).
std::size_t sequence_length(const unsigned char* p, const unsigned char* end) {
    const unsigned lead = p[0];
    const auto available = static_cast<std::size_t>(end - p);
    if (lead < 0x80) return 1;
    if (lead < 0xC2) return 0;
    if (lead < 0xE0) return available >= 2 && is_continuation(p[1]) ? 2 : 0;
    if (lead < 0xF0) {
        if (available < 3) return 0;
        const unsigned low = lead == 0xE0 ? 0xA0 : 0x80;   // no overlongs
        const unsigned high = lead == 0xED ? 0x9F : 0xBF;  // no surrogates
        if (p[1] < low || p[1] > high || !is_continuation(p[2])) return 0;
        return 3;
    }
    if (lead < 0xF5) {
        if (available < 4) return 0;
        const unsigned low = lead == 0xF0 ? 0x90 : 0x80;   // no overlongs
        const unsigned high = lead == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
        if (p[1] < low || p[1] > high || !is_continuation(p[2]) || !is_continuation(p[3])) return 0;
        return 4;
    }
    return 0;
}

bool all_ascii(const unsigned char* p) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);
    return (word & 0x8080808080808080ULL) == 0;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
    auto p = reinterpret_cast<const unsigned char*>(text.data());
    const auto end = p + text.size();
    while (p < end) {
        // Names and ids are mostly ASCII: skip eight such bytes at a time.
        if (end - p >= 8 && all_ascii(p)) {
            p += 8;
            continue;
        }
        const std::size_t length = sequence_length(p, end);
        if (length == 0) return false;
        p += length;
    }
    return true;
}

std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
    const auto begin = reinterpret_cast<const unsigned char*>(text.data());
    return at < text.size() ? sequence_length(begin + at, begin + text.size()) : 0;
}

std::string to_storable_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    auto p = reinterpret_cast<const unsigned char*>(text.data());
    const auto end = p + text.size();
    while (p < end) {
        const std::size_t length = sequence_length(p, end);
        if (length == 0 || *p == 0) {
            out += replacement_character;
            ++p;
            continue;
        }
        out.append(reinterpret_cast<const char*>(p), length);
        p += length;
    }
    return out;
}

std::string_view cut_at_char_boundary(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return text;
    std::size_t cut = max_bytes;
    // Step back over continuation bytes (at most three) to the start of the
    // sequence that would be split.
    for (int steps = 0; steps < 3 && cut > 0 &&
                        is_continuation(static_cast<unsigned char>(text[cut]));
         ++steps) {
        --cut;
    }
    return text.substr(0, cut);
}

std::string quoted(std::string_view text, std::size_t max_bytes) {
    static constexpr char hex[] = "0123456789ABCDEF";
    const std::string_view shown = cut_at_char_boundary(text, max_bytes);
    std::string out = "\"";
    auto p = reinterpret_cast<const unsigned char*>(shown.data());
    const auto end = p + shown.size();
    while (p < end) {
        const std::size_t length = sequence_length(p, end);
        if (length > 1) {
            out.append(reinterpret_cast<const char*>(p), length);
            p += length;
            continue;
        }
        const unsigned char byte = *p++;
        if (byte == '"' || byte == '\\') {
            out += '\\';
            out += static_cast<char>(byte);
        } else if (length == 1 && byte >= 0x20 && byte != 0x7F) {
            out += static_cast<char>(byte);
        } else {
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 0x0F];
        }
    }
    out += '"';
    if (shown.size() < text.size()) out += "...";
    return out;
}

namespace {

enum class control_style { json_u, hex_x };

void append_escaped(std::string& out, std::string_view text, control_style style) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (unsigned char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += style == control_style::json_u ? "\\u00" : "\\x";
                    out += hex[c >> 4];
                    out += hex[c & 0xF];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    append_escaped(out, text, control_style::json_u);
}

void append_logfmt_string(std::string& out, std::string_view text) {
    append_escaped(out, text, control_style::hex_x);
}

}  // namespace comeback
