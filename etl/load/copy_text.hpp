#pragma once
// Rows in PostgreSQL COPY's text format (one row per line, fields separated
// by tabs, \N for NULL, backslash escapes), appended to one buffer and escaped
// in place. pqxx::stream_to builds and escapes every field as its own
// std::string, which made it the loader's largest cost in comeback-sync's own
// profile. Knows nothing of the database: the window loader sends the buffer.

#include "load/sql_time.hpp"
#include "model/comeback.hpp"

#include <charconv>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

namespace comeback {

class copy_text {
public:
    void text(std::string_view value) {
        separate();
        append_escaped(buffer_, value);
    }
    void text(const std::string& value) { text(std::string_view{value}); }
    void text(const std::optional<std::string>& value) {
        if (value) text(*value);
        else null();
    }
    void plain(const char* value) {  // a fixed string that needs no escaping
        separate();
        buffer_ += value;
    }
    void number(long long value) {
        separate();
        char digits[24];
        const auto result = std::to_chars(std::begin(digits), std::end(digits), value);
        buffer_.append(digits, result.ptr);
    }
    // An instant as microseconds since the Unix epoch (see sql_time.hpp).
    void micros(const std::optional<instant>& value) {
        if (value) number(sql_time::micros(*value));
        else null();
    }
    void null() {
        separate();
        buffer_ += "\\N";
    }
    void end_row() {
        buffer_ += '\n';
        first_ = true;
    }

    std::size_t size() const { return buffer_.size(); }
    bool empty() const { return buffer_.empty(); }
    std::string_view view() const { return buffer_; }
    void clear() { buffer_.clear(); }

    // COPY text escaping of one field's value. PostgreSQL text cannot hold
    // NUL, and JSON can (\u0000): one would fail the whole window, so it
    // becomes U+FFFD.
    static void append_escaped(std::string& out, std::string_view value) {
        for (char c : value) {
            switch (c) {
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                case '\b': out += "\\b"; break;
                case '\f': out += "\\f"; break;
                case '\v': out += "\\v"; break;
                case '\0': out += "\xEF\xBF\xBD"; break;
                default: out += c;
            }
        }
    }

private:
    void separate() {
        if (!first_) buffer_ += '\t';
        first_ = false;
    }

    std::string buffer_;
    bool first_ = true;
};

}  // namespace comeback
