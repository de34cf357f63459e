#include "config/secret.hpp"

#include <openssl/crypto.h>

namespace comeback {

void wipe(std::string& text) noexcept {
    // Within the capacity resize() never reallocates: the bytes past size()
    // (an earlier, longer value) are covered too.
    text.resize(text.capacity());
    OPENSSL_cleanse(text.data(), text.size());
    text.clear();
}

secret::secret(std::string&& value) : value_(std::move(value)) { wipe(value); }

secret::secret(secret&& other) noexcept : value_(std::move(other.value_)) { wipe(other.value_); }

secret& secret::operator=(const secret& other) {
    if (this != &other) {
        wipe(value_);
        value_ = other.value_;
    }
    return *this;
}

secret& secret::operator=(secret&& other) noexcept {
    if (this != &other) {
        wipe(value_);
        value_ = std::move(other.value_);
        wipe(other.value_);
    }
    return *this;
}

}  // namespace comeback
