#pragma once
// What one process's loads have stored of their customers' contacts, so a
// later window that names a contact the same way need not look it up again.
//
// A backfill's windows name the same contacts over and over (two in three of
// a window's contacts were named by an earlier window of the customer), and
// sql::window_loader::merge_entities looked each one up by primary key to
// find that nothing was due. The loader flags each staged row whose contact
// this memo knows to be stored under the row's name (or whose row has no
// name: a missing name never replaces one); the merge leaves out the flagged
// rows and so skips a contact whose rows were all flagged.
//
// Skipping writes nothing the merge would have written, because:
// - the memo learns a contact only from a load that merged it and committed:
//   after it the stored row exists (contacts are never deleted) with the
//   name that load merged, or a NULL one when the contact was erased or the
//   names are omitted, and neither a merge of the same name nor of no name
//   changes either;
// - that merge refreshed last_seen_at when it was more than a day old, so it
//   is at most a day older than that load; an entry is trusted for
//   `lifetime` (12 hours, on the monotonic clock) after it, so a skipped
//   contact's last_seen_at stays within the two days docs/data-model.md
//   promises (a database clock stepped forward may see it older, for at
//   most the same 12 hours);
// - a window's flags for a contact are all unknown, or known until a row
//   with another name and unknown from there on (contact_memo::window): so
//   the rows left unflagged still hold the one whose name wins (the last
//   one with a name), and a contact the merge skips had all its rows known.
// Another process that renames a contact meanwhile is overwritten by a merge
// and left alone by a skip; either order of the two loads would give one of
// the two.
//
// Contacts are keyed by a 64-bit SipHash of the customer and the contact id,
// names by 32 bits of another; the keys are random per process, so nobody who
// can write a contact's name can aim for a collision, and a rename taken for
// the same name by chance (one in four billion) lasts until the entry's
// lifetime ends. The SipHash-2-4 is the memo's own: OpenSSL's (EVP_MAC
// "SIPHASH") gives the same values, which the test checks, but took 63 to 114
// ns a short id against 38 to 51 ns here, a context reused, and a first load
// hashes about two million. Bounded: at most `capacity` contacts (16 bytes
// each, 32 while the table grows); one more and it starts over empty.
// Thread-safe: a command's loads run on several database threads.

#include <boost/unordered/unordered_flat_map.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

namespace comeback {

struct entity;

class contact_memo {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t default_capacity = 384 * 1024;
    static constexpr std::chrono::hours lifetime{12};

    explicit contact_memo(std::size_t capacity = default_capacity);
    contact_memo(const contact_memo&) = delete;
    contact_memo& operator=(const contact_memo&) = delete;

    std::size_t size() const;

    // One window's contacts as its loader formats them: whether each row's
    // contact is known, and after the commit what the memo learns.
    class window {
    public:
        // At most this many contacts of one window are tracked; the rows of
        // any beyond are flagged unknown and not learnt.
        static constexpr std::size_t max_contacts = 64 * 1024;

        window(contact_memo& memo, std::string_view customer);

        // The batch's contacts (each id once, with the name its rows carry)
        // at `now`: their flags, in the same order.
        const std::vector<bool>& sight(const std::vector<entity>& contacts, clock::time_point now);

        // The window's load merged every contact it did not flag and
        // committed; the merge's stamp was read at `merged_at`.
        void committed(clock::time_point merged_at);

    private:
        struct tracked {
            std::uint32_t memo_name = 0;  // what the memo said when the window first named it
            std::uint32_t name = 0;       // the last name the window gave it
            bool memo_named = false;
            bool named = false;
            bool known = true;  // every row so far was known
        };
        contact_memo& memo_;
        std::uint64_t secret_[2];  // contact ids' key (customer_secret)
        boost::unordered_flat_map<std::uint64_t, tracked> contacts_;
        std::vector<bool> flags_;
    };

    // SipHash-2-4 of `bytes` under `key` (k0, k1: the key's bytes read as two
    // little-endian words). Exposed for its test.
    static std::uint64_t siphash(const std::uint64_t (&key)[2], std::string_view bytes);

private:
    // What the memo knows of one contact, in one word: 32 bits of its name's
    // hash, when it was learnt (seconds since `epoch_`, 31 bits) and whether
    // the name is known.
    using stored = std::uint64_t;
    static stored pack(std::uint32_t name, std::uint32_t seconds, bool named) {
        return (std::uint64_t(name) << 32) | (std::uint64_t(seconds & 0x7fffffffU) << 1) | (named ? 1 : 0);
    }
    static std::uint32_t name_of(stored s) { return static_cast<std::uint32_t>(s >> 32); }
    static std::uint32_t seconds_of(stored s) { return static_cast<std::uint32_t>(s >> 1) & 0x7fffffffU; }
    static bool named(stored s) { return (s & 1) != 0; }

    // The key a customer's contact ids are hashed under: the memo's, its
    // first word mixed with the customer's hash, so the same id of two
    // customers is two contacts.
    void customer_secret(std::string_view customer, std::uint64_t (&secret)[2]) const;
    std::uint32_t name_key(std::string_view name) const;
    std::uint32_t seconds_at(clock::time_point at) const;

    const std::size_t capacity_;
    const clock::time_point epoch_;
    std::uint64_t contact_secret_[2];
    std::uint64_t name_secret_[2];
    mutable std::mutex mutex_;
    boost::unordered_flat_map<std::uint64_t, stored> stored_;
};

}  // namespace comeback
