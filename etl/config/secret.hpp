#pragma once
// A value that must never reach a log, an error message, a metric or
// check-config output. It has no stream or format operator on purpose: the only
// way to the text is reveal(), used where the secret is put on the wire.

#include <string>
#include <utility>

namespace comeback {

class secret {
public:
    secret() = default;
    explicit secret(std::string value) : value_(std::move(value)) {}

    const std::string& reveal() const { return value_; }
    bool empty() const { return value_.empty(); }

    // What to print wherever a secret would be shown.
    static constexpr const char* redacted = "<redacted>";

private:
    std::string value_;
};

}  // namespace comeback
