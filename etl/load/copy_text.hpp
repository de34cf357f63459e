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
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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
    // becomes U+FFFD. Bytes that need no escape, nearly all of them, are
    // appended a run at a time.
    static void append_escaped(std::string& out, std::string_view value) {
        std::size_t run = 0;  // where the bytes not yet appended begin
        for (std::size_t i = 0; i < value.size(); ++i) {
            const char* escaped = escape_of(value[i]);
            if (escaped == nullptr) continue;
            out.append(value.data() + run, i - run);
            out += escaped;
            run = i + 1;
        }
        out.append(value.data() + run, value.size() - run);
    }

    // Rows as copy_text wrote them, as one PostgreSQL array literal per
    // column (`columns` of them, each element quoted, NULL as NULL): what a
    // statement takes as $n::text[] or $n::bigint[] and unnests into the same
    // rows COPY would have read. Throws std::logic_error when a row has
    // another number of fields.
    static std::vector<std::string> array_literals(std::string_view rows, std::size_t columns) {
        std::vector<std::string> arrays(columns, "{");
        std::size_t column = 0;
        for (std::size_t at = 0; at < rows.size();) {
            const std::size_t end = rows.find_first_of("\t\n", at);
            if (end == std::string_view::npos || column == columns) {
                throw std::logic_error("copy_text::array_literals: a row that does not end or has too many fields");
            }
            std::string& out = arrays[column];
            if (out.size() > 1) out += ',';
            append_element(out, rows.substr(at, end - at));
            if (rows[end] == '\n') {
                if (column + 1 != columns) {
                    throw std::logic_error("copy_text::array_literals: a row with too few fields");
                }
                column = 0;
            } else {
                ++column;
            }
            at = end + 1;
        }
        for (auto& array : arrays) array += '}';
        return arrays;
    }

    // `count` values, the i-th written by `write_one(rows, i)` as one field,
    // as one PostgreSQL array literal (quoted and escaped as above): an
    // array parameter built from a list.
    template <typename Each>
    static std::string array_of(std::size_t count, Each&& write_one) {
        copy_text rows;
        for (std::size_t i = 0; i < count; ++i) {
            write_one(rows, i);
            rows.end_row();
        }
        return array_literals(rows.view(), 1).front();
    }

private:
    // What stands for `c` in COPY text, or null when it stands for itself.
    static const char* escape_of(char c) {
        switch (c) {
            case '\\': return "\\\\";
            case '\n': return "\\n";
            case '\r': return "\\r";
            case '\t': return "\\t";
            case '\b': return "\\b";
            case '\f': return "\\f";
            case '\v': return "\\v";
            case '\0': return "\xEF\xBF\xBD";
            default: return nullptr;
        }
    }

    // One field's COPY text as an array element: its escapes read, the
    // value quoted.
    static void append_element(std::string& out, std::string_view field) {
        if (field == "\\N") {
            out += "NULL";
            return;
        }
        out += '"';
        for (std::size_t i = 0; i < field.size(); ++i) {
            char c = field[i];
            if (c == '\\' && i + 1 < field.size()) {
                switch (field[++i]) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'b': c = '\b'; break;
                    case 'f': c = '\f'; break;
                    case 'v': c = '\v'; break;
                    default: c = field[i];  // \\ is a backslash
                }
            }
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }

    void separate() {
        if (!first_) buffer_ += '\t';
        first_ = false;
    }

    std::string buffer_;
    bool first_ = true;
};

}  // namespace comeback
