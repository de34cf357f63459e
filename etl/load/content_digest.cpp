#include "load/content_digest.hpp"

// The package's library, not its header inlined: its updates pick the widest
// vector unit the CPU has at run time (AVX2, AVX-512), where code compiled
// from the header keeps to the SSE2 every x86-64 has. Four times as fast on
// the bench's machines, and a re-run hashes every body it fetches
// (docs/benchmarks.md). XXH3_128bits_update below is that dispatching update
// (the header renames it); reset and digest are the library's too.
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t by value
#include <xxh_x86dispatch.h>

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
