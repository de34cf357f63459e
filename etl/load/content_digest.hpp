#pragma once
// A 128-bit XXH3 over everything a window load would write, fed as the loader
// formats it, or over a response body and what decides how it is read (the
// response digest). Two loads of a window with equal digests saw the same
// content, so the second may confirm the first instead of comparing row by
// row (see window_loader).
//
// XXH3 is not a cryptographic hash, and that is a choice: it runs at more
// than 10 GB/s where SHA-256 ran at 1.7 GB/s with the CPU's SHA extensions,
// and hashing every body was the largest part of a re-run's CPU. A chance
// collision of 128 bits does not happen; a crafted one would take someone
// who can write a comeback's text into the customer's own Vitec data, and it
// would buy them at most a day: a window is confirmed only while it was
// compared row by row less than a day ago, and `backfill --recheck` never
// confirms (docs/design.md, "Confirming from the response digest").

#include <memory>
#include <string>
#include <string_view>

namespace comeback {

class content_digest {
public:
    content_digest();  // throws std::runtime_error when the digest cannot start
    ~content_digest();
    content_digest(const content_digest&) = delete;
    content_digest& operator=(const content_digest&) = delete;

    void add(std::string_view bytes);
    // The digest as 32 lowercase hex digits (as `xxhsum -H2` prints it). Call
    // once; add() after it throws.
    std::string finish();

private:
    struct state;
    std::unique_ptr<state> state_;
};

}  // namespace comeback
