#include "sync/lease_keeper.hpp"

#include "load/lease.hpp"
#include "observability/logging.hpp"

#include <pqxx/pqxx>

#include <algorithm>

namespace comeback {

namespace asio = boost::asio;

namespace {

// Reserved lease ids for instance slots; '#' keeps them apart from Vitec
// customer ids, which are letters and digits (M12345, S1, ...).
std::string slot_id(unsigned slot) { return "#instance-slot/" + std::to_string(slot); }

}  // namespace

lease_keeper::lease_keeper(db_workers& db, std::string schema,
                           std::function<bool(const std::string&)> busy)
    : session_(db.dedicated()), schema_(std::move(schema)), busy_(std::move(busy)) {}

void lease_keeper::set_customers(std::vector<std::string> customer_ids) {
    customers_ = std::move(customer_ids);
}

bool lease_keeper::held(const std::string& customer_id) const {
    auto found = held_.find(customer_id);
    return found != held_.end() && found->second;
}

std::size_t lease_keeper::held_count() const {
    return static_cast<std::size_t>(
        std::count_if(held_.begin(), held_.end(), [](const auto& entry) { return entry.second; }));
}

void lease_keeper::forget_all() {
    held_.clear();
    slot_.reset();
    instances_ = 1;
}

asio::awaitable<void> lease_keeper::round() {
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
    for (auto& [id, is_held] : held_) {
        const bool configured = std::find(customers_.begin(), customers_.end(), id) != customers_.end();
        if (is_held && !configured && !busy_(id)) {
            is_held = false;
            to_release.push_back(id);
        }
    }

    std::vector<std::string> taken;
    std::vector<std::string> given_back;
    co_await session_.run([&](pqxx::connection& connection) {
        for (const std::string& id : to_release) release_customer_lease(connection, schema_, id);

        // Our slot: re-taking it is the liveness check (leases are re-entrant,
        // so take then release leaves the count as it was).
        if (slot_) {
            if (!try_acquire_customer_lease(connection, schema_, slot_id(*slot_))) {
                throw std::runtime_error("the instance slot lease was lost");
            }
            release_customer_lease(connection, schema_, slot_id(*slot_));
        } else {
            for (unsigned slot = 0; slot < max_instances && !slot_; ++slot) {
                if (try_acquire_customer_lease(connection, schema_, slot_id(slot))) slot_ = slot;
            }
        }
        // Count the others: a slot we can take is free (give it straight back).
        unsigned others = 0;
        for (unsigned slot = 0; slot < max_instances; ++slot) {
            if (slot_ && slot == *slot_) continue;
            if (try_acquire_customer_lease(connection, schema_, slot_id(slot))) {
                release_customer_lease(connection, schema_, slot_id(slot));
            } else {
                ++others;
            }
        }
        instances_ = others + 1;
    });

    const std::size_t total = customers_.size();
    const std::size_t share = (total + instances_ - 1) / instances_;
    std::size_t holding = held_count();

    // Give back idle customers above the fair share, so a new instance gets work.
    for (auto& [id, is_held] : held_) {
        if (holding <= share) break;
        if (is_held && !busy_(id)) {
            is_held = false;
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
        for (const std::string& id : given_back) release_customer_lease(connection, schema_, id);
        for (const std::string& id : wanted) {
            if (holding >= share) break;
            if (try_acquire_customer_lease(connection, schema_, id)) {
                taken.push_back(id);
                ++holding;
            }
        }
    });
    for (const std::string& id : taken) held_[id] = true;
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
    std::vector<std::string> ids;
    for (const auto& [id, is_held] : held_) {
        if (is_held) ids.push_back(id);
    }
    const auto slot = slot_;
    forget_all();
    try {
        co_await session_.run([&](pqxx::connection& connection) {
            for (const std::string& id : ids) release_customer_lease(connection, schema_, id);
            if (slot) release_customer_lease(connection, schema_, slot_id(*slot));
        });
    } catch (const std::exception& error) {
        // The locks go with the session when the process exits anyway.
        log_event(spdlog::level::warn, "lease.release_failed", {{"error", error.what()}});
    }
}

}  // namespace comeback
