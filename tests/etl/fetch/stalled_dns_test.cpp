// A DNS lookup that never answers is cut off by the request's deadline. The
// lookup runs on Asio's resolver thread through getaddrinfo, which this test
// program replaces: for one host name it blocks until the test lets it go (or
// a minute passes), like a resolver whose server drops every packet; every
// other name goes to the C library's getaddrinfo.

#include "fetch/vitec_client.hpp"

#include "fake_vitec_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <netdb.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;
namespace net = boost::asio;

namespace {

constexpr const char* stalled_host = "stalled-dns.test";

std::mutex stall_mutex;
std::condition_variable stall_released;
bool released = false;
int stalled_lookups = 0;

void release_stalled_lookups() {
    std::lock_guard lock(stall_mutex);
    released = true;
    stall_released.notify_all();
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** results) {
    if (node != nullptr && std::strcmp(node, stalled_host) == 0) {
        std::unique_lock lock(stall_mutex);
        ++stalled_lookups;
        stall_released.wait_for(lock, 60s, [] { return released; });
        return EAI_AGAIN;
    }
    using function = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
    static const auto next = reinterpret_cast<function>(::dlsym(RTLD_NEXT, "getaddrinfo"));
    return next(node, service, hints, results);
}

TEST_CASE("a DNS lookup that never answers fails the request at request_timeout") {
    vitec_config config;
    config.base_url = parse_vitec_url(std::string("http://") + stalled_host + ":8080", true);
    config.username = "sync";
    config.request_timeout = 2s;
    config.max_requests_per_second = 1000;
    const secret password("pw");
    const window_request request{"M1", &password, "2024-01-01T00:00:00", "2024-01-08T00:00:00", "Occurrence"};
    const body_sink ignore = [](std::string_view) -> net::awaitable<void> { co_return; };

    net::io_context io;
    vitec_client client(io.get_executor(), config);
    fetch_result result;
    std::chrono::steady_clock::duration took{};
    // The lookup goes on in the background after the fetch gave up; it is let
    // go only once the fetch has returned, so a fetch that waited for it would
    // take the whole minute.
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            const auto started = std::chrono::steady_clock::now();
            result = co_await client.fetch(request, ignore);
            took = std::chrono::steady_clock::now() - started;
            release_stalled_lookups();
        },
        net::detached);
    io.run();

    {
        std::lock_guard lock(stall_mutex);
        CHECK(stalled_lookups == 1);
    }
    REQUIRE_FALSE(result.ok());
    INFO(result.failure->message);
    CHECK(result.kind() == failure_kind::transient);
    CHECK_THAT(result.failure->message, Catch::StartsWith("resolve stalled-dns.test:8080: timed out") &&
                                            Catch::Contains("vitec.request_timeout"));
    CHECK(took < config.request_timeout + 5s);  // a bound on the wait, far below the lookup's minute
}
