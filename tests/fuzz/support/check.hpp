#pragma once
// A property that does not hold stops the fuzzer with the input that broke it.

#include <cstdio>
#include <cstdlib>

// Prints what failed and where, then aborts: libFuzzer saves the input as a crash.
#define FUZZ_CHECK(condition)                                                             \
    do {                                                                                  \
        if (!(condition)) {                                                               \
            std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (false)
