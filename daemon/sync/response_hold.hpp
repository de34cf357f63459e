#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

// Memory for responses held unparsed until they end (see sync_window): at most
// per_response bytes of one response and `total` over all responses in flight;
// one that would pass either is parsed from then on as it arrives. A window
// whose last response was too large to hold is not held at all. Shared by
// every window of a command; used from the io_context thread.
struct response_hold {
    std::size_t per_response = 4 * 1024 * 1024;
    std::size_t total = 32 * 1024 * 1024;
    std::size_t held = 0;  // now, by every window
    std::size_t peak = 0;  // the most held at once

    // Buffers of responses done with, kept for the next ones while any
    // held_response exists. A buffer of a MB or more is a mapping of its own:
    // allocated afresh for every response, each of its pages was faulted in
    // and zeroed by the kernel, which cost a re-run a tenth of its I/O
    // thread. What they take counts with `held` against `total`; all of
    // them are freed when the last held_response goes, so an idle daemon
    // keeps none.
    std::vector<std::string> spare;
    std::size_t spare_bytes = 0;  // the spare buffers' capacity
    std::size_t holders = 0;      // held_response objects that exist
};

// One response held unparsed, its bytes counted against a response_hold until
// it is released (parsed or done with).
class held_response {
public:
    // `hold` null: holds nothing. `expected`: the size of the window's last
    // response; the first chunk kept reserves that much (within
    // per_response), so a response as large as the last one is held in one
    // buffer, not copied at every doubling.
    held_response(response_hold* hold, std::size_t expected);
    ~held_response();
    held_response(const held_response&) = delete;
    held_response& operator=(const held_response&) = delete;

    bool holding() const { return holding_; }
    bool empty() const { return bytes_.empty(); }
    std::string_view bytes() const { return bytes_; }

    // Keeps `chunk` when both limits allow it; else stops holding (the caller
    // parses what is held and everything after).
    bool keep(std::string_view chunk);

    // What is held, no longer counted or held.
    std::string take();

    // Stops holding; the buffer goes back to the hold's spares when they have room.
    void release();

private:
    void drop_spares_beyond(std::size_t room);

    response_hold* hold_;
    bool holding_;
    std::size_t expected_;
    std::string bytes_;
};

}  // namespace comeback
