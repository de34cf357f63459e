#include "sync/run_state.hpp"

#include "fetch/vitec_client.hpp"
#include "load/ledger.hpp"
#include "model/timestamp.hpp"
#include "observability/logging.hpp"
#include "sync/database_monitor.hpp"
#include "observability/metrics.hpp"
#include "sync/db_workers.hpp"
#include "sync/lease_keeper.hpp"
#include "sync/shutdown.hpp"
#include "sync/window_job.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <date/tz.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <set>

namespace comeback {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::chrono::milliseconds with_jitter(std::chrono::milliseconds delay, std::mt19937_64& rng) {
    if (delay <= 0ms) return 0ms;
    std::uniform_int_distribution<std::int64_t> spread(0, delay.count() / 10);
    return delay + std::chrono::milliseconds(spread(rng));
}

namespace {

window_status status_of(const std::string& text) {
    if (text == "complete") return window_status::complete;
    if (text == "failed") return window_status::failed;
    if (text == "held") return window_status::held;
    return window_status::pending;
}

std::optional<sys_seconds> to_seconds(const std::optional<instant>& at) {
    if (!at) return std::nullopt;
    return std::chrono::floor<std::chrono::seconds>(*at);
}

std::vector<window_state> to_states(const std::vector<ledger_entry>& entries) {
    std::vector<window_state> states;
    states.reserve(entries.size());
    for (const ledger_entry& entry : entries) {
        states.push_back({entry.first_day, entry.end_day, status_of(entry.status),
                          to_seconds(entry.fetched_at), to_seconds(entry.attempted_at)});
    }
    return states;
}

sys_seconds now_seconds() {
    return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace

const customer_config* customer_lookup::find(const std::shared_ptr<const config>& cfg, std::string_view id) {
    if (!cfg) return nullptr;
    auto id_less = [](const customer_config* a, const customer_config* b) { return a->id < b->id; };
    if (of_ != cfg) {
        of_ = cfg;
        by_id_.clear();
        by_id_.reserve(cfg->customers.size());
        for (const customer_config& customer : cfg->customers) by_id_.push_back(&customer);
        std::sort(by_id_.begin(), by_id_.end(), id_less);
    }
    const auto found = std::lower_bound(by_id_.begin(), by_id_.end(), id,
                                        [](const customer_config* c, std::string_view wanted) { return c->id < wanted; });
    return found != by_id_.end() && (*found)->id == id ? *found : nullptr;
}

asio::awaitable<cycle_result> run_one_tick(run_state& state, const std::string& id, cycle_gate::pass* pass) {
    customer_runtime& runtime = state.customers[id];
    cycle_result result;
    const std::shared_ptr<const config> cfg = state.cfg;  // this cycle's configuration
    const customer_config* customer = state.lookup.find(cfg, id);
    if (!customer) {
        result.removed = true;
        co_return result;
    }
    const date::time_zone& zone = find_zone(cfg->vitec.timezone);
    const sys_seconds started = now_seconds();
    const auto today = std::chrono::floor<date::days>(zone.to_local(started));
    const customer_plan plan = plan_customer(today, cfg->sync, zone);

    std::vector<ledger_entry> entries;
    {
        db_workers::session session = co_await state.db->checkout();
        std::vector<window> planned = plan.fresh;
        planned.insert(planned.end(), plan.history.begin(), plan.history.end());
        co_await session.run([&](pqxx::connection& connection) {
            entries = plan_and_read_ledger(connection, cfg->database.schema, id, cfg->sync.date_criteria,
                                           planned, cfg->privacy.rejected_raw_retention);
        });
    }
    const std::vector<window_state> states = to_states(entries);
    // windows_held{customer}: what the ledger holds now, kept current as this
    // cycle's loads hold windows or release them.
    std::set<std::pair<date::local_days, date::local_days>> held_windows;
    for (const window_state& s : states) {
        if (s.status == window_status::held) held_windows.emplace(s.first_day, s.end_day);
    }
    auto publish_held = [&] {
        if (state.metrics) state.metrics->set_windows_held(id, held_windows.size());
    };
    publish_held();
    const schedule_decision decision = decide(plan, states, today, started, cfg->sync);
    result.next_fresh_due = decision.next_fresh_due;

    const std::shared_ptr<vitec_client> client = state.client;
    window_context context{*client, *state.db, *state.confirmations, *state.shutdown, state.metrics, state.rng};
    context.database = state.database;
    context.hold = &state.hold;
    context.pass = pass;
    context.ledger = &entries;
    // A crash of the server can lose only the loads of its last moment, and
    // their ledger rows with them: those windows are fetched again, and the
    // run makes every load durable before it stops (docs/design.md).
    context.load.commit_lazily = true;
    auto may_start = [&] { return !state.shutdown->triggered() && state.leases->held(id); };
    // Returns false when the customer must stop for this cycle.
    auto run_window = [&](const window& w) -> asio::awaitable<bool> {
        runtime.busy = true;
        // The lease this window starts under: a lost one, even re-taken since,
        // stops it (another instance may have worked the customer meanwhile).
        const std::uint64_t grant = state.leases->grant(id);
        context.still_held = [&state, &id, grant] { return state.leases->grant(id) == grant; };
        window_outcome outcome;
        try {
            outcome = co_await sync_window(context, *cfg, *customer, w);
        } catch (const std::exception& error) {
            // A programming error: sync_window logged it with the window; the
            // customer's turn ends the cycle and backs off.
            runtime.busy = false;
            ++state.totals.windows_failed;
            state.totals.failures.add({id, w.from_text(), w.to_text(),
                                       std::string(to_string(failure_kind::internal_error)),
                                       std::string("internal error: ") + error.what()});
            throw;
        }
        runtime.busy = false;
        if (outcome.held()) {
            ++state.totals.windows_held;
            state.totals.held.add({id, w.from_text(), w.to_text(), "held",
                                   held_reason(outcome.counts.held_deletions, outcome.counts.held_live_rows)});
            held_windows.emplace(w.first_day, w.end_day);
            publish_held();
            co_return true;
        }
        if (outcome.committed) {
            // A failed attempt leaves a held window held; a commit releases it.
            if (held_windows.erase({w.first_day, w.end_day}) > 0) publish_held();
            ++state.totals.windows_ok;
            state.totals.rows_seen += outcome.counts.rows_seen;
            state.totals.rows_changed += outcome.counts.changed();
            co_return true;
        }
        if (outcome.dropped()) {
            // Newer data is in already; a lost lease ends the customer's cycle.
            co_return outcome.last_failure->kind != failure_kind::lease_lost;
        }
        ++state.totals.windows_failed;
        result.failed = true;
        const failure& failed = *outcome.last_failure;
        state.totals.failures.add(
            {id, w.from_text(), w.to_text(), std::string(to_string(failed.kind)), failed.message});
        if (outcome.database_down()) {
            // The customer's other windows would meet the same: wait for the database.
            result.database_down = true;
            co_return false;
        }
        if (outcome.parks_customer()) {
            runtime.backoff.park(now_seconds(), cfg->vitec.retry.auth_backoff);
            log_event(spdlog::level::err, "customer.parked",
                      {{"customer", id},
                       {"http_status", failed.http_status},
                       {"kind", to_string(failed.kind)},
                       {"retry_in_s", std::chrono::duration_cast<std::chrono::seconds>(
                                          cfg->vitec.retry.auth_backoff).count()},
                       {"error", failed.message}});
            co_return false;
        }
        co_return true;
    };

    // A fresh window tried now is due again one interval later at the latest; the
    // history phase below yields as soon as the first one is.
    auto due_again = [&](const window& w) {
        const sys_seconds at = now_seconds() + refresh_interval(w, today, cfg->sync);
        if (!result.next_fresh_due || at < *result.next_fresh_due) result.next_fresh_due = at;
    };
    for (const window& w : decision.fresh) {
        if (!may_start() || !co_await run_window(w)) co_return result;
        due_again(w);
    }
    for (const window& w : decision.history) {
        if (!may_start()) co_return result;
        // Freshness first: once a fresh window is due, end the cycle so the
        // next one starts with it; history resumes after.
        if (!state.once && result.next_fresh_due && now_seconds() >= *result.next_fresh_due) {
            result.more_history = true;
            co_return result;
        }
        if (!co_await run_window(w)) co_return result;
    }
    co_return result;
}

namespace {

// One turn of a customer: how long until its next, or nothing when it stops.
// `pass` is its place inside state.gate (empty when there is no gate).
asio::awaitable<std::optional<std::chrono::milliseconds>> customer_turn(run_state& state, const std::string& id,
                                                                        cycle_gate::pass pass) {
    customer_runtime& runtime = state.customers[id];
    if (state.shutdown->triggered()) co_return std::nullopt;
    // Before the lease: a customer taken out of the configuration loses its
    // lease at the next round, and would otherwise come round for ever. The
    // tick below reads the same configuration (nothing runs in between), so
    // this is the one place a removed customer stops.
    if (!state.lookup.find(state.cfg, id)) {
        log_event(spdlog::level::info, "customer.removed", {{"customer", id}});
        co_return std::nullopt;
    }
    const auto poll = std::chrono::duration_cast<std::chrono::milliseconds>(state.cfg->sync.poll_interval);
    if (!state.leases->held(id)) {
        if (state.once) co_return std::nullopt;  // another instance works it
        // Again once the lease keeper has had its round (every half poll interval).
        co_return with_jitter(poll / 2, state.rng);
    }
    const sys_seconds now = now_seconds();
    if (runtime.backoff.parked(now)) {
        if (state.once) co_return std::nullopt;
        co_return std::min<std::chrono::milliseconds>(*runtime.backoff.parked_until - now, poll);
    }

    cycle_result cycle;
    bool cycle_broke = false;
    try {
        cycle = co_await run_one_tick(state, id, &pass);
    } catch (const std::exception& error) {
        // The database failed while planning or reading the ledger, or a
        // window met a programming error: the customer backs off below.
        runtime.busy = false;
        cycle_broke = true;
        ++state.totals.cycles_failed;
        const failure_kind kind = kind_of(error);
        cycle.database_down = is_database_outage(kind);
        log_event(spdlog::level::err, "customer.cycle_failed",
                  {{"customer", id}, {"kind", to_string(kind)}, {"error", error.what()}});
    }
    pass = cycle_gate::pass{};  // the waits below need no place inside
    if (cycle.database_down && !state.once && state.database) {
        // Not the customer's trouble: no back-off. Wait until the probe
        // finds the database answering, then go on at once.
        while (!co_await state.database->wait_until_answering(poll)) {
            if (state.shutdown->triggered()) co_return std::nullopt;
        }
        co_return with_jitter(1s, state.rng) - 1s;
    }
    if (cycle.failed || cycle_broke) {
        runtime.backoff.cycle_failed();
    } else {
        runtime.backoff.cycle_succeeded();
    }
    if (state.once) co_return std::nullopt;

    std::chrono::milliseconds delay = cycle_delay(runtime.backoff, state.cfg->sync, state.cfg->vitec.retry);
    if (!cycle.failed && !cycle_broke) {
        if (cycle.more_history) {
            delay = 0ms;
        } else if (cycle.next_fresh_due) {
            const auto until_due = *cycle.next_fresh_due - now_seconds();
            delay = std::clamp<std::chrono::milliseconds>(until_due, 1s, delay);
        }
    }
    co_return with_jitter(delay, state.rng);
}

}  // namespace

customer_scheduler::customer_scheduler(run_state& state, std::function<void()> all_stopped)
    : state_(state), all_stopped_(std::move(all_stopped)) {}

void customer_scheduler::add(const std::string& id) {
    customer_runtime& runtime = state_.customers[id];
    if (runtime.looping) return;
    runtime.looping = true;
    ++looping_;
    log_event(spdlog::level::debug, "customer.started", {{"customer", id}});
    queue(clock::now(), id);
}

void customer_scheduler::queue(clock::time_point due, std::string id) {
    due_.push({due, std::move(id)});
    if (asleep_ && due < *asleep_) sooner_.wake();
}

void customer_scheduler::stopped(const std::string& id) {
    state_.customers[id].looping = false;
    if (--looping_ > 0) return;
    if (asleep_) sooner_.wake();  // with --once, run() is done
    if (all_stopped_) all_stopped_();
}

asio::awaitable<void> customer_scheduler::run() {
    while (!state_.shutdown->triggered() && !(state_.once && looping_ == 0)) {
        if (due_.empty() || due_.top().due > clock::now()) {
            // Nothing due: sleep until the first is, or (none queued, every
            // customer inside a turn or none at all) a poll interval, unless
            // an entry due sooner is queued meanwhile.
            const auto until = due_.empty() ? clock::now() + state_.cfg->sync.poll_interval : due_.top().due;
            asleep_ = until;
            const bool awake = co_await state_.shutdown->sleep(
                std::chrono::ceil<std::chrono::milliseconds>(until - clock::now()), &sooner_);
            asleep_.reset();
            if (!awake) break;
            continue;
        }
        std::string id = due_.top().customer_id;
        due_.pop();
        cycle_gate::pass pass;
        if (state_.gate) pass = co_await state_.gate->enter();
        if (state_.shutdown->triggered()) {
            stopped(id);
            break;
        }
        ++turns_running_;
        asio::co_spawn(co_await asio::this_coro::executor, turn(std::move(id), std::move(pass)), asio::detached);
    }
    // Shutting down: the customers still waiting stop here, those inside a
    // turn when it ends.
    while (!due_.empty()) {
        const std::string id = due_.top().customer_id;
        due_.pop();
        stopped(id);
    }
}

asio::awaitable<void> customer_scheduler::turn(std::string id, cycle_gate::pass pass) {
    std::optional<std::chrono::milliseconds> next;
    try {
        next = co_await customer_turn(state_, id, std::move(pass));
    } catch (const std::exception& error) {
        // customer_turn catches what a cycle throws; this is allocation
        // failing around it. The customer stops rather than the daemon.
        log_event(spdlog::level::err, "customer.cycle_failed",
                  {{"customer", id}, {"kind", to_string(failure_kind::internal_error)}, {"error", error.what()}});
    }
    --turns_running_;
    if (next && !state_.shutdown->triggered()) {
        queue(clock::now() + *next, std::move(id));
    } else {
        stopped(id);
    }
}

}  // namespace comeback
