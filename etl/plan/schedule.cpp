#include "plan/schedule.hpp"

#include <algorithm>
#include <map>

namespace comeback {

namespace {

date::days distance_in_days(date::local_days a, date::local_days b) {
    return a < b ? b - a : a - b;
}

}  // namespace

customer_plan plan_customer(date::local_days today, const sync_config& sync,
                            const date::time_zone& zone) {
    customer_plan plan;
    plan.fresh = plan_windows(today - sync.lookback, today + sync.horizon, sync.window, zone);
    const date::local_days history_start{sync.history_start};
    const date::local_days fresh_start = plan.fresh.front().first_day;
    if (history_start < fresh_start) {
        plan.history = plan_windows(history_start, fresh_start - date::days{1}, sync.window, zone);
    }
    return plan;
}

std::chrono::seconds refresh_interval(const window& w, date::local_days today,
                                      const sync_config& sync) {
    if (sync.freshness.empty()) return sync.poll_interval;
    // Tiers may be listed in any order: the narrowest one covering the window
    // applies; beyond every tier, the widest.
    const date::days distance = distance_in_days(w.first_day, today);
    const freshness_tier* covering = nullptr;
    const freshness_tier* widest = &sync.freshness.front();
    for (const freshness_tier& tier : sync.freshness) {
        if (tier.within > widest->within) widest = &tier;
        if (distance <= tier.within && (!covering || tier.within < covering->within)) covering = &tier;
    }
    return (covering ? covering : widest)->every;
}

schedule_decision decide(const customer_plan& plan, std::span<const window_state> ledger,
                         date::local_days today, sys_seconds now, const sync_config& sync) {
    // Ledger rows are matched on their exact days: after a change of window
    // length the old rows no longer match and the new windows start pending.
    std::map<std::pair<date::local_days, date::local_days>, const window_state*> known;
    for (const window_state& state : ledger) known[{state.first_day, state.end_day}] = &state;
    auto state_of = [&](const window& w) -> const window_state* {
        auto found = known.find({w.first_day, w.end_day});
        return found == known.end() ? nullptr : found->second;
    };

    // When a held window is due again; none when it is not held (or never attempted).
    auto held_due_at = [&](const window& w, const window_state* state) -> std::optional<sys_seconds> {
        if (!state || state->status != window_status::held || !state->attempted_at) return std::nullopt;
        return *state->attempted_at + refresh_interval(w, today, sync);
    };

    schedule_decision decision;
    for (const window& w : plan.fresh) {
        const window_state* state = state_of(w);
        std::optional<sys_seconds> due_at = held_due_at(w, state);
        if (!due_at && state && state->status == window_status::complete && state->fetched_at) {
            due_at = *state->fetched_at + refresh_interval(w, today, sync);
        }
        if (due_at) {
            if (*due_at > now) {
                if (!decision.next_fresh_due || *due_at < *decision.next_fresh_due) {
                    decision.next_fresh_due = *due_at;
                }
                continue;
            }
        }
        decision.fresh.push_back(w);
    }
    // Nearest to today first; on equal distance the later window first, since
    // comebacks are mostly in the future.
    std::stable_sort(decision.fresh.begin(), decision.fresh.end(),
                     [today](const window& a, const window& b) {
                         const auto da = distance_in_days(a.first_day, today);
                         const auto db = distance_in_days(b.first_day, today);
                         if (da != db) return da < db;
                         return a.first_day > b.first_day;
                     });

    for (const window& w : plan.history) {
        const window_state* state = state_of(w);
        if (const auto due_at = held_due_at(w, state)) {
            if (*due_at <= now) decision.history.push_back(w);
            continue;
        }
        if (!state || state->status != window_status::complete) decision.history.push_back(w);
    }
    return decision;
}

void customer_backoff::cycle_succeeded() { failed_cycles = 0; }

void customer_backoff::cycle_failed() { ++failed_cycles; }

void customer_backoff::park(sys_seconds now, std::chrono::milliseconds auth_backoff) {
    parked_until = now + std::chrono::duration_cast<std::chrono::seconds>(auth_backoff);
}

std::chrono::seconds cycle_delay(const customer_backoff& backoff, const sync_config& sync,
                                 const retry_config& retry) {
    if (backoff.failed_cycles == 0) return sync.poll_interval;
    const auto cap = std::chrono::duration_cast<std::chrono::seconds>(retry.auth_backoff);
    auto delay = sync.poll_interval;
    for (unsigned i = 1; i < backoff.failed_cycles && delay < cap; ++i) delay *= 2;
    return std::min(delay, std::max(cap, sync.poll_interval));
}

}  // namespace comeback
