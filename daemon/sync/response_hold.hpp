#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace comeback {

// The memory of one held response: appended to, or written in place by the
// client reading the body (held_response::room), which a std::string cannot
// take without first zeroing what the read then overwrites.
class held_bytes {
public:
    held_bytes() = default;
    explicit held_bytes(std::size_t capacity);  // not initialized

    std::string_view view() const { return {data_.get(), size_}; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }
    char* end() { return data_.get() + size_; }  // the first byte past what is held
    std::size_t room() const { return capacity_ - size_; }

    // Appends bytes that fit in room() (reserve first); throws
    // std::logic_error when they do not.
    void append(std::string_view bytes);
    // Makes room for at least `capacity` bytes, keeping what is held.
    void reserve(std::size_t capacity);
    // `n` bytes written at end() are held.
    void commit(std::size_t n) { size_ += n; }
    void clear() { size_ = 0; }

private:
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// Memory for responses held unparsed until they end (see sync_window): at most
// per_response bytes of one response and `total` over all responses in flight;
// one that would pass either is parsed from then on as it arrives. A window
// whose last response was too large to hold is not held at all. Shared by
// every window of a command; used from the io_context thread.
struct response_hold {
    std::size_t per_response = 4 * 1024 * 1024;
    std::size_t total = 32 * 1024 * 1024;
    std::size_t held = 0;  // now, by every window (with the room offered to reads in progress)
    std::size_t peak = 0;  // the most held at once

    // Buffers of responses done with, kept for the next ones while any
    // held_response exists. A buffer of a MB or more is a mapping of its own:
    // allocated afresh for every response, each of its pages was faulted in
    // and zeroed by the kernel, which cost a re-run a tenth of its I/O
    // thread. What they take counts with `held` against `total`; all of
    // them are freed when the last held_response goes, so an idle daemon
    // keeps none.
    std::vector<held_bytes> spare;
    std::size_t spare_bytes = 0;  // the spare buffers' capacity
    std::size_t holders = 0;      // held_response objects that exist
};

// Tells glibc's allocator to keep the memory of freed held buffers for the
// next ones (once, at the start of the process). A held response is a buffer
// of a few hundred KB up to 5 MiB; glibc maps such a buffer on its own and
// unmaps it when freed, or, once its threshold has risen past that size,
// takes it from the heap and gives the heap's top back to the kernel: either
// way every page of the next buffer is faulted in and zeroed anew, one fault
// per 4 KiB, costly on a virtual machine. The same goes for every buffer a
// window allocates and frees (the client's read chunk and read buffer among
// them), so a re-run of unchanged windows, which holds no response, gains as
// much (bench row 3: about 1,165 faults a run against 4,700 to 6,000 with
// glibc's default thresholds). After this, buffers up to 8 MiB come from the
// heap and up to 8 MiB of free heap top stay mapped. The environment's
// MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ still win.
void keep_held_buffers_mapped();

// One response held unparsed, its bytes counted against a response_hold until
// it is released (parsed or done with).
class held_response {
public:
    // `hold` null: holds nothing. `expected`: the size of the window's last
    // response (0: unknown); the first buffer is that large (within
    // per_response), so a response as large as the last one is held in one
    // buffer, not copied at every doubling.
    held_response(response_hold* hold, std::size_t expected);
    ~held_response();
    held_response(const held_response&) = delete;
    held_response& operator=(const held_response&) = delete;

    bool holding() const { return holding_; }
    bool empty() const { return bytes_.empty(); }
    std::string_view bytes() const { return bytes_.view(); }

    // Where the client may read the next bytes of the body to, so they are
    // held without a copy: up to `wanted` bytes at the end of what is held,
    // counted against both limits until keep() takes them. Empty when not
    // holding or when either limit leaves no room (the client then reads
    // into a buffer of its own, and keep() decides). The room is good until
    // the next call of room(), keep() or release().
    std::span<char> room(std::size_t wanted);

    // Keeps `chunk` when both limits allow it; else stops holding (the caller
    // parses what is held and everything after). A chunk inside the last
    // room() is kept where it is (moved to the front of the room if it does
    // not start there), as that room was counted when offered.
    bool keep(std::string_view chunk);

    // What is held, no longer counted or held.
    held_bytes take();

    // Stops holding; the buffer goes back to the hold's spares when they have room.
    void release();

private:
    void drop_spares_beyond(std::size_t room);
    void forget_room();
    // A buffer for the first bytes, of at least `at_least` (what must fit at
    // once) and the size the response is expected to have: the smallest
    // spare that takes that whole, else a new one.
    void start_buffer(std::size_t at_least);
    // Room for `needed` more bytes (within per_response): the one rule by
    // which a held buffer grows.
    void grow(std::size_t needed);

    response_hold* hold_;
    bool holding_;
    std::size_t expected_;
    held_bytes bytes_;
    std::size_t offered_ = 0;  // the last room() offered, counted in hold_->held
};

}  // namespace comeback
