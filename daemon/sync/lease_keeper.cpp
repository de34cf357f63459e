#include "sync/lease_keeper.hpp"

#include "load/lease.hpp"
#include "observability/logging.hpp"

#include <pqxx/pqxx>

#include <algorithm>

namespace comeback {

namespace asio = boost::asio;

lease_keeper::lease_keeper(db_workers& db, std::string schema,
                           std::function<bool(const std::string&)> busy)
    : session_(db.dedicated()), schema_(std::move(schema)), busy_(std::move(busy)) {}

void lease_keeper::set_customers(std::vector<std::string> customer_ids) {
    customers_ = std::move(customer_ids);
    configured_.assign(customers_.begin(), customers_.end());
    std::sort(configured_.begin(), configured_.end());
}

bool lease_keeper::configured(std::string_view customer_id) const {
    return std::binary_search(configured_.begin(), configured_.end(), customer_id);
}

bool lease_keeper::held(const std::string& customer_id) const { return grant(customer_id) != 0; }

std::uint64_t lease_keeper::grant(const std::string& customer_id) const {
    auto found = held_.find(customer_id);
    return found != held_.end() ? found->second : 0;
}

std::size_t lease_keeper::held_count() const {
    return static_cast<std::size_t>(
        std::count_if(held_.begin(), held_.end(), [](const auto& entry) { return entry.second != 0; }));
}

bool lease_keeper::connection_lost() { return session_.connection_lost(); }

void lease_keeper::forget_all() {
    held_.clear();
    slot_.reset();
    instances_ = 1;
    // Keys name the schema by its OID: look them up again on the next connection.
    customer_keys_.clear();
    slot_keys_.clear();
}

std::vector<lease_id> lease_keeper::leases_of(pqxx::connection& connection,
                                            const std::vector<std::string>& customer_ids) {
    std::vector<std::string> missing;
    for (const std::string& id : customer_ids) {
        if (customer_keys_.find(id) == customer_keys_.end()) missing.push_back(id);
    }
    if (!missing.empty()) {
        auto found = customer_leases(connection, schema_, missing);
        for (std::size_t i = 0; i < missing.size(); ++i) customer_keys_.emplace(missing[i], std::move(found[i]));
    }
    std::vector<lease_id> leases;
    leases.reserve(customer_ids.size());
    for (const std::string& id : customer_ids) leases.push_back(customer_keys_.at(id));
    return leases;
}

const lease_id& lease_keeper::slot_key(pqxx::connection& connection, unsigned slot) {
    auto found = slot_keys_.find(slot);
    if (found == slot_keys_.end())
        found = slot_keys_.emplace(slot, instance_slot_lease(connection, schema_, slot)).first;
    return found->second;
}

asio::awaitable<void> lease_keeper::round() {
    if ((held_count() > 0 || slot_) && session_.connection_lost()) {
        // The server ended the session since the last round (a restart, a
        // terminated backend): its locks went with it. The next run() would
        // quietly open a new connection, on which nothing is held.
        const std::size_t lost = held_count();
        forget_all();
        log_event(spdlog::level::err, "lease.lost",
                  {{"customers", lost}, {"error", "the lease connection was closed by the server"}});
    }
    try {
        co_await round_on_connection();
    } catch (const std::exception& error) {
        // The session is gone or unusable, and its locks with it (or they will
        // be when the server notices). Start over on a new connection next round.
        const std::size_t lost = held_count();
        forget_all();
        log_event(spdlog::level::err, "lease.lost", {{"customers", lost}, {"error", error.what()}});
    }
}

asio::awaitable<void> lease_keeper::round_on_connection() {
    // Decisions need the current held_ map; customers released below are
    // marked unheld before the release runs, so no new window starts on them.
    std::vector<std::string> to_release;
    for (auto& [id, grant] : held_) {
        if (grant != 0 && !configured(id) && !busy_(id)) {
            grant = 0;
            to_release.push_back(id);
        }
    }

    std::vector<std::string> taken;
    std::vector<std::string> given_back;
    co_await session_.run([&](pqxx::connection& connection) {
        release_leases(connection, leases_of(connection, to_release));

        // Our slot: re-taking it is the liveness check (leases are re-entrant,
        // so take then release leaves the count as it was).
        if (slot_) {
            const lease_id& mine = slot_key(connection, *slot_);
            if (!try_acquire_lease(connection, mine)) throw std::runtime_error("the instance slot lease was lost");
            release_lease(connection, mine);
        } else {
            for (unsigned slot = 0; slot < max_instances && !slot_; ++slot) {
                if (try_acquire_lease(connection, slot_key(connection, slot))) slot_ = slot;
            }
        }
        // Count the others: a slot we can take is free (give it straight back).
        unsigned others = 0;
        for (unsigned slot = 0; slot < max_instances; ++slot) {
            if (slot_ && slot == *slot_) continue;
            const lease_id& other = slot_key(connection, slot);
            if (try_acquire_lease(connection, other)) {
                release_lease(connection, other);
            } else {
                ++others;
            }
        }
        instances_ = others + 1;
    });

    const std::size_t total = customers_.size();
    const std::size_t share = (total + instances_ - 1) / instances_;
    // The share counts configured customers only: one taken out of the
    // configuration but still busy is given back once its window ends, and
    // must not push a configured one out meanwhile.
    std::size_t holding = static_cast<std::size_t>(std::count_if(
        held_.begin(), held_.end(), [&](const auto& entry) { return entry.second != 0 && configured(entry.first); }));

    // Give back idle customers above the fair share, so a new instance gets work.
    for (auto& [id, grant] : held_) {
        if (holding <= share) break;
        if (grant != 0 && configured(id) && !busy_(id)) {
            grant = 0;
            given_back.push_back(id);
            --holding;
        }
    }
    // Take free customers up to the share, starting at an offset per slot so
    // instances starting together do not all race for the same customers.
    std::vector<std::string> wanted;
    const std::size_t offset = slot_ ? (*slot_ * std::max<std::size_t>(share, 1)) : 0;
    for (std::size_t i = 0; i < total; ++i) {
        const std::string& id = customers_[(offset + i) % total];
        if (!held(id)) wanted.push_back(id);
    }
    co_await session_.run([&](pqxx::connection& connection) {
        release_leases(connection, leases_of(connection, given_back));
        // In turns of as many as the share still lacks, so a turn never
        // takes more: a fleet's first round is one lookup and one turn.
        for (std::size_t next = 0; next < wanted.size() && holding < share;) {
            const std::size_t turn = std::min(share - holding, wanted.size() - next);
            const std::vector<std::string> trying(wanted.begin() + next, wanted.begin() + next + turn);
            const std::vector<bool> won = try_acquire_leases(connection, leases_of(connection, trying));
            for (std::size_t i = 0; i < turn; ++i) {
                if (!won[i]) continue;
                taken.push_back(wanted[next + i]);
                ++holding;
            }
            next += turn;
        }
    });
    for (const std::string& id : taken) held_[id] = next_grant_++;
    for (const std::string& id : to_release) held_.erase(id);

    if (!taken.empty() || !given_back.empty()) {
        auto join = [](const std::vector<std::string>& ids) {
            std::string text;
            for (const auto& id : ids) text += (text.empty() ? "" : ",") + id;
            return text;
        };
        log_event(spdlog::level::info, "lease.changed",
                  {{"instances", instances_},
                   {"held", held_count()},
                   {"taken", join(taken)},
                   {"given_back", join(given_back)}});
    }
}

asio::awaitable<void> lease_keeper::release_all() {
    std::vector<lease_id> leases;
    for (const auto& [id, grant] : held_) {
        if (grant == 0) continue;
        if (auto key = customer_keys_.find(id); key != customer_keys_.end()) leases.push_back(key->second);
    }
    if (slot_) {
        if (auto key = slot_keys_.find(*slot_); key != slot_keys_.end()) leases.push_back(key->second);
    }
    forget_all();
    try {
        co_await session_.run([&](pqxx::connection& connection) {
            release_leases(connection, leases);
        });
    } catch (const std::exception& error) {
        // The locks go with the session when the process exits anyway.
        log_event(spdlog::level::warn, "lease.release_failed", {{"error", error.what()}});
    }
}

}  // namespace comeback
