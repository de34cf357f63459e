#include "load/contact_memo.hpp"

#include "normalize/normalize.hpp"

#include <algorithm>
#include <bit>
#include <random>

namespace comeback {

namespace {

std::uint64_t little_endian_word(const char* at, std::size_t n) {
    std::uint64_t word = 0;
    for (std::size_t i = 0; i < n; ++i) word |= std::uint64_t(static_cast<unsigned char>(at[i])) << (8 * i);
    return word;
}

void random_key(std::uint64_t (&key)[2]) {
    std::random_device entropy;
    for (auto& word : key) word = (std::uint64_t(entropy()) << 32) ^ entropy();
}

}  // namespace

std::uint64_t contact_memo::siphash(const std::uint64_t (&key)[2], std::string_view bytes) {
    std::uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
    std::uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
    std::uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
    std::uint64_t v3 = 0x7465646279746573ULL ^ key[1];
    auto round = [&] {
        v0 += v1; v1 = std::rotl(v1, 13); v1 ^= v0; v0 = std::rotl(v0, 32);
        v2 += v3; v3 = std::rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = std::rotl(v3, 21); v3 ^= v0;
        v2 += v1; v1 = std::rotl(v1, 17); v1 ^= v2; v2 = std::rotl(v2, 32);
    };
    auto absorb = [&](std::uint64_t word) {
        v3 ^= word;
        round();
        round();
        v0 ^= word;
    };
    const std::size_t whole = bytes.size() / 8 * 8;
    for (std::size_t at = 0; at < whole; at += 8) absorb(little_endian_word(bytes.data() + at, 8));
    absorb(little_endian_word(bytes.data() + whole, bytes.size() - whole) | (std::uint64_t(bytes.size()) << 56));
    v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) round();
    return v0 ^ v1 ^ v2 ^ v3;
}

// Seconds count from well before the memo began, so that a time before any
// entry (which a monotonic clock does not give) still reads as earlier.
contact_memo::contact_memo(std::size_t capacity)
    : capacity_(capacity), epoch_(clock::now() - 4 * lifetime) {
    random_key(contact_secret_);
    random_key(name_secret_);
}

std::size_t contact_memo::size() const {
    std::lock_guard lock(mutex_);
    return stored_.size();
}

void contact_memo::customer_secret(std::string_view customer, std::uint64_t (&secret)[2]) const {
    secret[0] = contact_secret_[0] ^ siphash(contact_secret_, customer);
    secret[1] = contact_secret_[1];
}

std::uint32_t contact_memo::name_key(std::string_view name) const {
    return static_cast<std::uint32_t>(siphash(name_secret_, name) >> 32);
}

std::uint32_t contact_memo::seconds_at(clock::time_point at) const {
    const auto since = std::chrono::duration_cast<std::chrono::seconds>(at - epoch_).count();
    return static_cast<std::uint32_t>(std::clamp<long long>(since, 0, 0x7fffffff));
}

contact_memo::window::window(contact_memo& memo, std::string_view customer) : memo_(memo) {
    memo_.customer_secret(customer, secret_);
}

const std::vector<bool>& contact_memo::window::sight(const std::vector<entity>& contacts,
                                                     clock::time_point now) {
    flags_.assign(contacts.size(), false);
    const std::uint32_t now_s = memo_.seconds_at(now);
    const auto lifetime_s = static_cast<std::uint32_t>(std::chrono::seconds(lifetime).count());
    std::lock_guard lock(memo_.mutex_);
    for (std::size_t i = 0; i < contacts.size(); ++i) {
        const entity& e = contacts[i];
        const std::uint64_t key = siphash(secret_, e.id);
        const std::uint32_t name = e.name ? memo_.name_key(*e.name) : 0;
        auto found = contacts_.find(key);
        if (found == contacts_.end()) {
            if (contacts_.size() >= max_contacts) continue;  // untracked: unknown
            // What the memo says of the contact when the window first names
            // it decides the whole window: its flags only turn to unknown.
            tracked t;
            const auto s = memo_.stored_.find(key);
            const bool fresh = s != memo_.stored_.end() && now_s >= seconds_of(s->second) &&
                               now_s - seconds_of(s->second) < lifetime_s;
            t.known = fresh;
            t.memo_named = fresh && named(s->second);
            t.memo_name = fresh ? name_of(s->second) : 0;
            found = contacts_.emplace(key, t).first;
        }
        tracked& t = found->second;
        if (e.name) {
            t.known = t.known && t.memo_named && t.memo_name == name;
            t.named = true;
            t.name = name;
        }
        flags_[i] = t.known;
    }
    return flags_;
}

void contact_memo::window::committed(clock::time_point merged_at) {
    const std::uint32_t at = memo_.seconds_at(merged_at);
    std::lock_guard lock(memo_.mutex_);
    std::size_t merged = 0;
    for (const auto& [key, t] : contacts_) merged += t.known ? 0 : 1;
    if (memo_.stored_.size() + merged > memo_.capacity_) memo_.stored_.clear();
    for (const auto& [key, t] : contacts_) {
        if (t.known) continue;  // skipped by the merge: what the memo says stays as it was
        if (memo_.stored_.size() >= memo_.capacity_) break;
        auto [s, added] = memo_.stored_.try_emplace(key, pack(0, at, false));
        // A merge of no name leaves the stored one, whatever the memo knew of it.
        if (t.named) s->second = pack(t.name, at, true);
        else if (!added) s->second = pack(name_of(s->second), at, named(s->second));
    }
    contacts_.clear();
}

}  // namespace comeback
