#include "load/content_digest.hpp"

// OpenSSL 3 deprecates the one-algorithm SHA256_* calls in favour of EVP, but
// EVP_sha256() loads the provider machinery, which added about 2 MiB to the
// idle daemon's resident memory; these calls run the same implementation
// without it.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <stdexcept>

namespace comeback {

struct content_digest::state {
    SHA256_CTX context{};
    bool finished = false;
};

content_digest::content_digest() : state_(std::make_unique<state>()) {
    if (SHA256_Init(&state_->context) != 1) {
        throw std::runtime_error("content_digest: OpenSSL could not start a SHA-256 digest");
    }
}

content_digest::~content_digest() = default;

void content_digest::add(std::string_view bytes) {
    if (state_->finished) throw std::logic_error("content_digest::add after finish()");
    if (bytes.empty()) return;
    if (SHA256_Update(&state_->context, bytes.data(), bytes.size()) != 1) {
        throw std::runtime_error("content_digest: SHA-256 update failed");
    }
}

std::string content_digest::finish() {
    if (state_->finished) throw std::logic_error("content_digest::finish called twice");
    state_->finished = true;
    unsigned char value[SHA256_DIGEST_LENGTH];
    if (SHA256_Final(value, &state_->context) != 1) {
        throw std::runtime_error("content_digest: SHA-256 final failed");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * SHA256_DIGEST_LENGTH);
    for (unsigned char byte : value) {
        out += hex[byte >> 4];
        out += hex[byte & 0x0f];
    }
    return out;
}

}  // namespace comeback
