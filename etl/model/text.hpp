#pragma once
// Text rules shared by the stages: what may reach PostgreSQL `text` columns
// (valid UTF-8, no NUL) and how a bad value is shown in an error message.

#include <cstddef>
#include <string>
#include <string_view>

namespace comeback {

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing
// above U+10FFFF).
bool is_valid_utf8(std::string_view text);

// The length (1 to 4) of the well-formed UTF-8 sequence that starts at
// text[at], or 0 when none starts there: is_valid_utf8's rule for one character.
std::size_t utf8_sequence_length(std::string_view text, std::size_t at);

// A copy of `text` where every byte that is not part of a well-formed UTF-8
// sequence, and every NUL, is replaced by U+FFFD.
std::string to_storable_text(std::string_view text);

// The longest prefix of `text` no longer than `max_bytes` that does not end
// inside a UTF-8 sequence.
std::string_view cut_at_char_boundary(std::string_view text, std::size_t max_bytes);

// `text` quoted for an error message: at most `max_bytes` of it (then "..."),
// quotes and backslashes escaped, control bytes and bytes that are not valid
// UTF-8 written as \xNN. The result is always valid UTF-8 without NUL.
std::string quoted(std::string_view text, std::size_t max_bytes = 80);

// Appends `text` as a JSON string literal: quotes, backslashes and control
// characters escaped, every other byte as it is (the caller keeps it UTF-8).
void append_json_string(std::string& out, std::string_view text);

// The same quoting for key=value log lines, except that control characters
// other than \n, \r and \t are written \xNN, as shells and logfmt readers expect.
void append_logfmt_string(std::string& out, std::string_view text);

}  // namespace comeback
