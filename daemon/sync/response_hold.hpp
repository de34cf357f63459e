#pragma once

#include <cstddef>

namespace comeback {

// Memory for responses held unparsed until they end (see sync_window): at most
// per_response bytes of one response and `total` over all responses in flight;
// one that would pass either is parsed from then on as it arrives. Only a
// response whose window's last load recorded a response digest is held: a
// first load is parsed as it arrives. Shared by
// every window of a command; used from the io_context thread.
struct response_hold {
    std::size_t per_response = 4 * 1024 * 1024;
    std::size_t total = 32 * 1024 * 1024;
    std::size_t held = 0;  // now, by every window
    std::size_t peak = 0;  // the most held at once
};

}  // namespace comeback
