// The contact memo without a database: its hash against OpenSSL's SipHash,
// and what a window's flags and commit make of what it knows.

#include "load/contact_memo.hpp"
#include "normalize/normalize.hpp"

#include <catch2/catch.hpp>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <random>
#include <string>
#include <vector>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

std::uint64_t openssl_siphash(const unsigned char (&key)[16], std::string_view bytes) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
    REQUIRE(mac != nullptr);
    EVP_MAC_CTX* context = EVP_MAC_CTX_new(mac);
    std::size_t size = 8;
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
    unsigned char out[8];
    std::size_t written = 0;
    const bool ok = EVP_MAC_init(context, key, sizeof key, params) == 1 &&
                    EVP_MAC_update(context, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) == 1 &&
                    EVP_MAC_final(context, out, &written, sizeof out) == 1;
    EVP_MAC_CTX_free(context);
    EVP_MAC_free(mac);
    REQUIRE(ok);
    REQUIRE(written == 8);
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value |= std::uint64_t(out[i]) << (8 * i);
    return value;
}

std::vector<entity> contacts(std::initializer_list<entity> list) { return list; }

}  // namespace

TEST_CASE("the memo's SipHash-2-4 is OpenSSL's, from the empty input to several words") {
    unsigned char key_bytes[16];
    for (int i = 0; i < 16; ++i) key_bytes[i] = static_cast<unsigned char>(i);
    const std::uint64_t key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    // The reference vector: the 15 bytes 00..0e under the key 00..0f.
    std::string fifteen;
    for (int i = 0; i < 15; ++i) fifteen += static_cast<char>(i);
    CHECK(contact_memo::siphash(key, fifteen) == 0xa129ca6149be45e5ULL);

    std::mt19937_64 random(7);
    for (std::size_t length = 0; length <= 70; ++length) {
        std::string bytes(length, '\0');
        for (char& c : bytes) c = static_cast<char>(random());
        INFO("length " << length);
        CHECK(contact_memo::siphash(key, bytes) == openssl_siphash(key_bytes, bytes));
    }
}

TEST_CASE("a window's contacts are known once a committed window merged them under the same name") {
    contact_memo memo;
    const auto start = contact_memo::clock::now();
    {
        contact_memo::window first(memo, "M1");
        CHECK(first.sight(contacts({{"C1", "Anna"}, {"C2", std::nullopt}}), start) == std::vector<bool>{false, false});
        first.committed(start);
    }
    CHECK(memo.size() == 2);

    contact_memo::window second(memo, "M1");
    // The same name, no name (which replaces none), another name, a new contact.
    CHECK(second.sight(contacts({{"C1", "Anna"}, {"C2", std::nullopt}, {"C3", "Cilla"}}), start + 1h) ==
          std::vector<bool>{true, true, false});
    // C2's name was never known: a name for it must be merged.
    CHECK(second.sight(contacts({{"C2", "Bo"}}), start + 1h) == std::vector<bool>{false});
    // Once a contact's row was unknown in a window, its later rows are too,
    // whatever the memo says: the deciding row is flagged only if all were.
    CHECK(second.sight(contacts({{"C2", std::nullopt}, {"C1", "Annika"}}), start + 1h) ==
          std::vector<bool>{false, false});
    CHECK(second.sight(contacts({{"C1", "Anna"}}), start + 1h) == std::vector<bool>{false});

    // Another customer's contact of the same id is another contact.
    contact_memo::window other(memo, "M2");
    CHECK(other.sight(contacts({{"C1", "Anna"}}), start + 1h) == std::vector<bool>{false});

    // The second window committed: each contact took the last name the
    // window gave it (C1's last batch named it Anna again), as the merge does.
    second.committed(start + 1h);
    contact_memo::window third(memo, "M1");
    CHECK(third.sight(contacts({{"C1", "Anna"}, {"C2", "Bo"}, {"C3", "Cilla"}}), start + 2h) ==
          std::vector<bool>{true, true, true});
    CHECK(third.sight(contacts({{"C1", "Annika"}}), start + 2h) == std::vector<bool>{false});
}

TEST_CASE("the memo learns only from commits, keeps a name a nameless merge left, and forgets with time") {
    contact_memo memo;
    const auto start = contact_memo::clock::now();
    {
        contact_memo::window rolled_back(memo, "M1");
        rolled_back.sight(contacts({{"C1", "Anna"}}), start);
    }  // never committed
    CHECK(memo.size() == 0);

    contact_memo::window named(memo, "M1");
    named.sight(contacts({{"C1", "Anna"}}), start);
    named.committed(start);
    // A window that names C1 with no name after the entry's lifetime merges it
    // (its last_seen_at may be due); the merge leaves the stored name.
    contact_memo::window nameless(memo, "M1");
    CHECK(nameless.sight(contacts({{"C1", std::nullopt}}), start + contact_memo::lifetime) ==
          std::vector<bool>{false});
    nameless.committed(start + contact_memo::lifetime);
    contact_memo::window later(memo, "M1");
    CHECK(later.sight(contacts({{"C1", "Anna"}}), start + contact_memo::lifetime + 1h) == std::vector<bool>{true});
    CHECK(later.sight(contacts({{"C1", "Anna"}}), start + 2 * contact_memo::lifetime) == std::vector<bool>{true});
    contact_memo::window expired(memo, "M1");
    CHECK(expired.sight(contacts({{"C1", "Anna"}}), start + 2 * contact_memo::lifetime) == std::vector<bool>{false});
    // A clock before the entry (it cannot be on a monotonic one): not trusted.
    contact_memo::window earlier(memo, "M1");
    CHECK(earlier.sight(contacts({{"C1", "Anna"}}), start - 1h) == std::vector<bool>{false});
}

TEST_CASE("the memo and a window's tracking stay within their bounds") {
    contact_memo memo(3);
    const auto start = contact_memo::clock::now();
    contact_memo::window first(memo, "M1");
    first.sight(contacts({{"C1", "A"}, {"C2", "B"}}), start);
    first.committed(start);
    CHECK(memo.size() == 2);
    // Two more would pass the capacity: it starts over with what fits.
    contact_memo::window second(memo, "M1");
    second.sight(contacts({{"C3", "C"}, {"C4", "D"}}), start);
    second.committed(start);
    CHECK(memo.size() == 2);
    contact_memo::window third(memo, "M1");
    CHECK(third.sight(contacts({{"C1", "A"}, {"C3", "C"}}), start) == std::vector<bool>{false, true});

    // A window naming more contacts than it tracks: the rest are unknown and not learnt.
    contact_memo large_memo;
    contact_memo::window large(large_memo, "M1");
    std::vector<entity> many;
    for (std::size_t i = 0; i < contact_memo::window::max_contacts + 10; ++i) many.push_back({"C" + std::to_string(i), "N"});
    large.sight(many, start);
    large.committed(start);
    CHECK(large_memo.size() == contact_memo::window::max_contacts);
}
