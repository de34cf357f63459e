// keep_held_buffers_mapped (sync/response_hold.hpp), in a process of its own:
// glibc's thresholds move with what the process freed before, so only a fresh
// process shows what the call changes.

#include "sync/response_hold.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <cstring>

using namespace comeback;

namespace {

long minor_faults() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

// Faults taken by one held response's buffer: allocated, written whole, freed.
long faults_of_one_buffer(std::size_t size) {
    const long before = minor_faults();
    {
        held_bytes buffer(size);
        std::memset(buffer.end(), 'x', buffer.room());
        buffer.commit(buffer.room());
        REQUIRE(buffer.view().back() == 'x');
    }
    return minor_faults() - before;
}

}  // namespace

TEST_CASE("a freed held buffer's pages stay mapped for the next one instead of being faulted in again") {
    keep_held_buffers_mapped();
    constexpr std::size_t size = 2 * 1024 * 1024;  // 512 pages
    faults_of_one_buffer(size);  // the first is faulted in, once
    // Without the call glibc unmaps the first (a mapping of its own) and
    // takes the second from a heap it has to grow: 512 faults again.
    for (int i = 0; i < 5; ++i) CHECK(faults_of_one_buffer(size) < 32);
    CHECK(faults_of_one_buffer(size / 2) < 32);
}
