#include "load/content_digest.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace comeback {

struct content_digest::state {
    EVP_MD_CTX* context = nullptr;
    bool finished = false;
    ~state() { EVP_MD_CTX_free(context); }
};

content_digest::content_digest() : state_(std::make_unique<state>()) {
    state_->context = EVP_MD_CTX_new();
    if (state_->context == nullptr || EVP_DigestInit_ex(state_->context, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("content_digest: OpenSSL could not start a SHA-256 digest");
    }
}

content_digest::~content_digest() = default;

void content_digest::add(std::string_view bytes) {
    if (state_->finished) throw std::logic_error("content_digest::add after finish()");
    if (bytes.empty()) return;
    if (EVP_DigestUpdate(state_->context, bytes.data(), bytes.size()) != 1) {
        throw std::runtime_error("content_digest: SHA-256 update failed");
    }
}

std::string content_digest::finish() {
    if (state_->finished) throw std::logic_error("content_digest::finish called twice");
    state_->finished = true;
    unsigned char value[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(state_->context, value, &length) != 1) {
        throw std::runtime_error("content_digest: SHA-256 final failed");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[value[i] >> 4];
        out += hex[value[i] & 0x0f];
    }
    return out;
}

}  // namespace comeback
