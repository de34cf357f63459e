#pragma once
// A value that must never reach a log, an error message, a metric or
// check-config output. It has no stream or format operator on purpose: the only
// way to the text is reveal(), used where the secret is put on the wire.
//
// Its memory is wiped (OPENSSL_cleanse, which the compiler may not drop) when
// it is destroyed or replaced, and a moved-from secret keeps nothing behind, so
// a password lives in memory only as long as something needs it. Code that
// copies the text out (a request's credentials) wipes its copy with wipe().

#include <string>

namespace comeback {

// Overwrites the whole buffer of `text` (its capacity, not only its size) and
// empties it. The buffer is kept, so nothing is freed unwiped.
void wipe(std::string& text) noexcept;

class secret {
public:
    secret() = default;
    // Takes the text and wipes the buffer of the string it came from (a short
    // string's text is copied by a move, not taken, and would stay behind).
    explicit secret(std::string&& value);
    // Copies the text; the caller wipes its own string.
    explicit secret(const std::string& value) : value_(value) {}
    secret(const secret& other) : value_(other.value_) {}
    secret(secret&& other) noexcept;
    secret& operator=(const secret& other);
    secret& operator=(secret&& other) noexcept;
    ~secret() { wipe(value_); }

    const std::string& reveal() const { return value_; }
    bool empty() const { return value_.empty(); }

    // What to print wherever a secret would be shown.
    static constexpr const char* redacted = "<redacted>";

private:
    std::string value_;
};

}  // namespace comeback
