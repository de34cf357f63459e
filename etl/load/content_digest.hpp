#pragma once
// A SHA-256 over everything a window load would write, fed as the loader
// formats it. Two loads of a window with equal digests saw the same content,
// so the second may confirm the first instead of comparing row by row (see
// window_loader). SHA-256 rather than a faster non-cryptographic hash: a
// collision would silently keep stale data, and the response is not ours.

#include <memory>
#include <string>
#include <string_view>

namespace comeback {

class content_digest {
public:
    content_digest();  // throws std::runtime_error when OpenSSL cannot start a digest
    ~content_digest();
    content_digest(const content_digest&) = delete;
    content_digest& operator=(const content_digest&) = delete;

    void add(std::string_view bytes);
    // The digest as 64 lowercase hex digits. Call once; add() after it throws.
    std::string finish();

private:
    struct state;
    std::unique_ptr<state> state_;
};

}  // namespace comeback
