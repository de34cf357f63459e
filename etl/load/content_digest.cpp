#include "load/content_digest.hpp"

// Inlined: the digest is a handful of calls on the hot path of every re-fetch,
// and the header is the whole implementation (the package's shared library is
// then not a run-time dependency).
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <stdexcept>

namespace comeback {

struct content_digest::state {
    XXH3_state_t context{};
    bool finished = false;
};

content_digest::content_digest() : state_(std::make_unique<state>()) {
    if (XXH3_128bits_reset(&state_->context) != XXH_OK) {
        throw std::runtime_error("content_digest: could not start an XXH3-128 digest");
    }
}

content_digest::~content_digest() = default;

void content_digest::add(std::string_view bytes) {
    if (state_->finished) throw std::logic_error("content_digest::add after finish()");
    if (bytes.empty()) return;
    if (XXH3_128bits_update(&state_->context, bytes.data(), bytes.size()) != XXH_OK) {
        throw std::runtime_error("content_digest: XXH3-128 update failed");
    }
}

std::string content_digest::finish() {
    if (state_->finished) throw std::logic_error("content_digest::finish called twice");
    state_->finished = true;
    XXH128_canonical_t value;  // big-endian, as xxhsum -H2 prints it
    XXH128_canonicalFromHash(&value, XXH3_128bits_digest(&state_->context));
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * sizeof value.digest);
    for (unsigned char byte : value.digest) {
        out += hex[byte >> 4];
        out += hex[byte & 0x0f];
    }
    return out;
}

}  // namespace comeback
