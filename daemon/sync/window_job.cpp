#include "sync/window_job.hpp"

#include "fetch/credentials.hpp"
#include "fetch/retry.hpp"
#include "fetch/vitec_client.hpp"
#include "load/content_digest.hpp"
#include "load/database_failure.hpp"
#include "load/fencing.hpp"
#include "model/timestamp.hpp"
#include "normalize/normalize.hpp"
#include "observability/logging.hpp"
#include "observability/metrics.hpp"
#include "parse/response_parser.hpp"
#include "sync/confirmer.hpp"
#include "sync/database_monitor.hpp"
#include "sync/db_workers.hpp"
#include "sync/shutdown.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/channel_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <elf.h>
#include <link.h>
#include <pqxx/pqxx>

#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <vector>

namespace comeback {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

// What travels from the parser to the loader: a batch, or the end of the body.
struct load_message {
    normalized_batch batch;
    std::vector<rejection> rejections;
    std::optional<fetch_info> finish;  // set on the last message only
    // With finish, before any batch: the response ended unparsed; may it
    // confirm the window? The loader answers on the verdict channel, then
    // either has committed or waits for the parsed response.
    bool unparsed = false;
    // With unparsed: finishes the response digest, which has not seen the
    // held body yet. The confirmer runs it on its database thread
    // (sync/confirmer.hpp), so the I/O thread, which reads every connection,
    // does not spend its time on hashing (a third of it on a re-run of
    // unchanged windows when the digest was SHA-256).
    std::function<std::string()> finish_digest;
};
// The loader's answer to an unparsed response.
struct verdict {
    bool confirmed = false;
    std::string response_digest;  // what finish_digest returned
};
using load_queue = asio::experimental::channel<void(boost::system::error_code, load_message)>;
using done_channel = asio::experimental::channel<void(boost::system::error_code)>;
using verdict_channel = asio::experimental::channel<void(boost::system::error_code, verdict)>;

// The build ID the linker wrote into the running executable
// (NT_GNU_BUILD_ID, a hash of everything it linked), read from memory: no
// file is read, where hashing the executable read tens of MB on the I/O
// thread at the first window. "" when it has none.
std::string build_id() {
    std::string id;
    // The first object dl_iterate_phdr visits is the executable.
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* out) -> int {
            for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& segment = info->dlpi_phdr[i];
                if (segment.p_type != PT_NOTE) continue;
                const std::size_t align = segment.p_align == 8 ? 8 : 4;
                const auto aligned = [align](std::size_t n) { return (n + align - 1) / align * align; };
                const char* at = reinterpret_cast<const char*>(info->dlpi_addr + segment.p_vaddr);
                const char* const end = at + segment.p_memsz;
                while (at + sizeof(ElfW(Nhdr)) <= end) {
                    ElfW(Nhdr) note;
                    std::memcpy(&note, at, sizeof note);
                    const char* name = at + sizeof note;
                    const char* desc = name + aligned(note.n_namesz);
                    if (desc + note.n_descsz > end) break;
                    if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
                        static constexpr char hex[] = "0123456789abcdef";
                        auto& text = *static_cast<std::string*>(out);
                        for (ElfW(Word) b = 0; b < note.n_descsz; ++b) {
                            const auto byte = static_cast<unsigned char>(desc[b]);
                            text += hex[byte >> 4];
                            text += hex[byte & 0xf];
                        }
                        return 1;
                    }
                    at = desc + aligned(note.n_descsz);
                }
            }
            return 1;
        },
        &id);
    return id;
}

bool is_closed(const boost::system::error_code& error) {
    return error == asio::experimental::error::channel_closed;
}

// Thrown by the body sink when the loader has closed the queue: it failed and
// says why. Ends the fetch; attempt_window() reports the loader's failure.
struct loader_stopped {};

// Thrown by the body sink and the loader's side when the customer's lease was
// lost mid-window: nothing of the window may be committed.
struct lease_stopped {};

failure lease_lost_failure(const std::string& customer_id) {
    return {failure_kind::lease_lost, 0,
            "this instance lost customer " + customer_id +
                "'s lease while the window was in flight; the instance holding it now works the window",
            std::nullopt};
}

struct attempt_result {
    std::optional<load_counts> counts;  // committed
    std::optional<failure> failed;      // else why not
    // Neither: the response of a fetch sent without a ticket did not confirm
    // the window unparsed, or its window, never loaded when the turn began,
    // was loaded meanwhile. It is not loaded; the window is fetched again,
    // with a ticket.
    bool needs_ticket = false;
};

// Thrown by the body sink of a fetch sent without a ticket once the body
// grows past what one held response may take: it is not confirmed, and not
// loaded.
struct ticket_needed {};

// The window's row in the ledger read at the start of the turn, unless there
// is none or the window is held: a held window's fetches return content other
// than its last load's until the hold ends, so it is fetched as ever.
const ledger_entry* unheld_entry(const window_context& context, const window& w) {
    const ledger_entry* entry = context.ledger ? find_window(*context.ledger, w.first_day, w.end_day) : nullptr;
    return entry && entry->status != "held" ? entry : nullptr;
}

// The size of the window's last response, when the ledger read at the start
// of the turn says its last load recorded the response's digest. A held
// window keeps its last complete load's digest while fetches return other
// content, which would cost every fetch of it a second request: none.
std::optional<std::uint64_t> confirmable_bytes(const window_context& context, const window& w) {
    const ledger_entry* entry = unheld_entry(context, w);
    return entry ? entry->confirmable_bytes : std::nullopt;
}

// The ledger read at the start of the turn says the window was planned and
// never loaded: its first load needs no ticket (load/fencing.hpp).
bool never_loaded(const window_context& context, const window& w) {
    const ledger_entry* entry = unheld_entry(context, w);
    return entry && !entry->fetched_at;
}

window_key key_of(const config& cfg, const customer_config& customer, const window& w) {
    return {customer.id, cfg.sync.date_criteria, w.first_day, w.end_day, w.from, w.to};
}

// The command's load options with the configured guard and privacy rules.
load_options options_of(const config& cfg, load_options options) {
    options.deletion_guard = cfg.sync.deletion_guard;
    options.contact_names = cfg.privacy.contact_names;
    options.rejected_raw_retention = cfg.privacy.rejected_raw_retention;
    return options;
}

contact_name_rule contact_rule_of(const config& cfg) {
    return {cfg.privacy.contact_names, cfg.privacy.pseudonym_key.reveal()};
}

// A response whose every element was rejected says nothing about which stored
// comebacks still exist (renamed keys, another format): it fails the window
// instead of loading.
std::optional<failure> all_rejected(const parse_summary& summary, const std::string& first_reason) {
    if (summary.rows > 0 || summary.rejected == 0) return std::nullopt;
    return failure{failure_kind::all_rejected, 0,
                   "every one of the " + std::to_string(summary.rejected) +
                       " elements was rejected; the first: " + first_reason,
                   std::nullopt};
}

std::string message_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

// The loader's side: takes batches off the queue on a database thread, inside
// one transaction, and commits when the end of the body arrives. A closed
// queue (the fetch failed) or a failure here leaves the transaction to roll
// back; the failure goes to `load_error` and the queue is closed for the
// fetch side.
asio::awaitable<void> load_side(db_workers& db, confirmer& confirmations, load_queue& queue,
                                verdict_channel& verdicts, done_channel& done,
                                const std::string& schema,
                                const window_key& key, load_options options,
                                const std::function<bool()>& still_held,
                                std::optional<load_counts>& counts,
                                std::exception_ptr& load_error) {
    // Checked out when the first message arrives, not when the request is
    // sent: a window holds no database session while it waits for Vitec, so
    // the windows in flight are bounded by the request limits, and the
    // sessions by the loads.
    db_workers::session session;
    bool checked_out = false;
    auto run = [&](std::function<void(pqxx::connection&)> work) -> asio::awaitable<void> {
        if (!checked_out) {
            session = co_await db.checkout();
            checked_out = true;
        }
        co_await session.run(std::move(work));
        // The loader lives on this connection until the window ends: should
        // the server close it meanwhile, the next call must fail on it (and
        // the loader go, on the pool thread), not find it replaced.
        session.pin();
    };
    std::unique_ptr<window_loader> loader;
    // A failed step destroys the loader at once, on the same thread and while
    // its connection still exists: session.run() drops a broken connection
    // right after the step, and the loader must not outlive it.
    auto step = [&](pqxx::connection& connection, const std::function<void()>& work) {
        try {
            if (!loader) loader = std::make_unique<window_loader>(connection, schema, key, options);
            work();
        } catch (...) {
            loader.reset();
            throw;
        }
    };
    // A batch waits here for the message behind it, and the two go to the
    // database thread together: a small window's only batch goes with its
    // commit, one hand-off where there were two, and a streamed body's
    // batches go two at a time. (Adding a batch formats its rows in memory;
    // the loader talks to the server when it begins, stages or commits.)
    std::optional<load_message> waiting;
    auto add_waiting = [&] {
        if (!waiting) return;
        loader->add(waiting->batch, waiting->rejections);
        waiting.reset();
    };
    try {
        for (;;) {
            auto [error, message] = co_await queue.async_receive(asio::as_tuple(asio::use_awaitable));
            if (is_closed(error)) break;  // the fetch failed: nothing is committed
            if (error) throw boost::system::system_error(error, "load queue");
            if (message.finish && message.unparsed) {
                if (still_held && !still_held()) throw lease_stopped{};
                confirmer::verdict confirmed = co_await confirmations.confirm(
                    key, *message.finish, options.fetch_ticket, std::move(message.finish_digest));
                counts = std::move(confirmed.counts);
                // Named, not a temporary inside the co_await: GCC 12 destroyed
                // such a temporary twice (a double free of the digest string).
                verdict answer{counts.has_value(), std::move(confirmed.response_digest)};
                co_await verdicts.async_send(boost::system::error_code{}, std::move(answer),
                                             asio::use_awaitable);
                if (counts) break;
                continue;  // the parsed response follows
            }
            if (message.finish) {
                if (still_held && !still_held()) throw lease_stopped{};
                co_await run([&](pqxx::connection& connection) {
                    step(connection, [&] {
                        add_waiting();
                        counts = loader->commit(*message.finish);
                    });
                });
                break;
            }
            if (!waiting) {
                waiting = std::move(message);
                continue;
            }
            co_await run([&](pqxx::connection& connection) {
                step(connection, [&] {
                    add_waiting();
                    loader->add(message.batch, message.rejections);
                });
            });
        }
    } catch (...) {
        load_error = std::current_exception();
        queue.close();    // the fetch side stops at its next send
        verdicts.close();  // or while it waits for a verdict
    }
    if (loader && counts) {
        // Committed: destroying it sends nothing, so no hand-off to a database thread.
        loader.reset();
    } else if (loader) {
        // Rolling back is a round trip: keep it off the I/O thread too.
        try {
            co_await session.run([&](pqxx::connection&) { loader.reset(); });
        } catch (const std::exception&) {
            loader.reset();
        }
    }
    co_await done.async_send(boost::system::error_code{}, asio::use_awaitable);
}

// GCC 12 follows the coroutine frame's allocation into Asio's recycling
// allocator (aligned_alloc, or a cached block) and warns that the frame's
// operator delete does not match it, depending on how much it inlines: a
// false positive of -Wmismatched-new-delete, since Asio pairs the two itself.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// One attempt: fetch, parse and load in one transaction. Returns the counts or
// the classified failure; throws what no stage classifies. With
// `may_skip_ticket`, a window whose last load recorded its response digest is
// fetched without a ticket, to be confirmed unparsed; if it does not confirm,
// the result needs_ticket.
asio::awaitable<attempt_result> attempt_window(window_context& context, const config& cfg,
                                               const customer_config& customer,
                                               const window& w, const window_key& key,
                                               bool may_skip_ticket) {
    // Everything that may throw before the loader runs comes first: once it
    // runs, this frame must wait for it (done) whatever happens.
    parser_options options;
    options.api_zone = &find_zone(cfg.vitec.timezone);
    options.max_field_bytes = static_cast<std::size_t>(cfg.vitec.max_field_bytes);
    const window_request request{customer.id, &customer.password, w.from_text(), w.to_text(),
                                 cfg.sync.date_criteria.name()};
    auto executor = co_await asio::this_coro::executor;
    attempt_result result;
    // The ticket before the request: it orders this fetch against every other
    // fetch of the window, wherever it runs (load/fencing.hpp).
    load_options load = context.load;
    // Set when the window's last load recorded a response digest: the size
    // of its response (see `held` below).
    std::optional<std::uint64_t> last_response_bytes;
    // A response that can only be confirmed needs no ticket (load/fencing.hpp):
    // one that fits the hold, of a window the ledger says may confirm.
    const std::optional<std::uint64_t> known_bytes =
        may_skip_ticket && !context.load.recheck ? confirmable_bytes(context, w) : std::nullopt;
    const bool unticketed = known_bytes && context.hold && *known_bytes <= context.hold->per_response;
    auto lease_lost = [&] { return context.still_held && !context.still_held(); };
    // Nor does the first load of a window the turn's ledger says was never
    // loaded: it loads only while that is still so (load/fencing.hpp).
    load.first_load_unticketed =
        !unticketed && may_skip_ticket && !context.load.recheck && never_loaded(context, w);
    if (unticketed || load.first_load_unticketed) {
        last_response_bytes = known_bytes;
        if (lease_lost()) result.failed = lease_lost_failure(customer.id);
    } else {
        // Given back before the request is sent (see load_side).
        db_workers::session session = co_await context.db.checkout();
        if (lease_lost()) {
            result.failed = lease_lost_failure(customer.id);
        } else {
            try {
                co_await session.run([&](pqxx::connection& connection) {
                    const taken_ticket taken = take_fetch_ticket(connection, cfg.database.schema, key);
                    load.fetch_ticket = taken.ticket;
                    last_response_bytes = taken.last_response_bytes;
                });
            } catch (const database_error& error) {
                result.failed = error.failure();
            }
        }
    }
    if (result.failed) co_return result;
    load_queue queue(executor, context.queue_batches);
    verdict_channel verdicts(executor, 1);
    done_channel done(executor, 1);
    std::optional<load_counts> counts;
    std::exception_ptr load_error;
    std::vector<row_batch> ready;
    std::string first_rejection;
    // What the body says may be what a server echoed of the request: a
    // rejection's reason quotes the value it rejected, and is logged and
    // stored; a failure's message may quote the body. Both are redacted, as
    // the client redacts what breaks while it reads. The credentials (copies
    // of the password) are made only when there is something to redact, not
    // for every unchanged re-fetch.
    std::optional<basic_credentials> credentials;
    auto redact = [&](std::string& text) {
        if (!credentials) credentials.emplace(cfg.vitec.username, customer.password);
        credentials->redact(text);
    };
    response_parser parser(options, [&](row_batch&& batch) {
        for (rejection& r : batch.rejections) redact(r.reason);
        if (first_rejection.empty() && !batch.rejections.empty()) {
            first_rejection = batch.rejections.front().reason;
        }
        ready.push_back(std::move(batch));
    });
    const contact_name_rule contact_rule = contact_rule_of(cfg);
    asio::co_spawn(executor,
                   load_side(context.db, context.confirmations, queue, verdicts, done, cfg.database.schema, key,
                             options_of(cfg, load), context.still_held, counts, load_error),
                   asio::detached);
    auto hand_on = [&](load_message message) -> asio::awaitable<void> {
        auto [error] = co_await queue.async_send(boost::system::error_code{}, std::move(message),
                                                 asio::as_tuple(asio::use_awaitable));
        if (is_closed(error)) throw loader_stopped{};
        if (error) throw boost::system::system_error(error, "load queue");
    };
    auto hand_on_ready = [&]() -> asio::awaitable<void> {
        for (row_batch& batch : ready) {
            load_message message;
            message.batch = normalize(customer.id, std::move(batch.rows), contact_rule);
            message.rejections = std::move(batch.rejections);
            co_await hand_on(std::move(message));
        }
        ready.clear();
    };
    // A response is held unparsed while it fits (held_response); what no
    // longer fits is parsed from there on as it arrives. Held, a body is read
    // as fast as the server sends it, whatever the loader's pace, so its
    // request's place in the client's limiter is free for another window as
    // soon as it is in, and a slow load does not keep a connection idle. A
    // re-fetch held whole may confirm its window from its digest, unparsed; a
    // window whose last response was too large to hold is not held at all.
    // Nothing confirms under --recheck: such a response is parsed as a first load's.
    const bool may_confirm = last_response_bytes.has_value() && !context.load.recheck;
    // A response fetched without a ticket is never parsed: it confirms its
    // window from its digest, or the window is fetched again with a ticket
    // and that response is parsed. So none of it is kept: each piece enters
    // the digest as it arrives, within the size a held response may have.
    const bool streamed = unticketed;
    std::uint64_t streamed_bytes = 0;
    const bool worth_holding =
        context.hold && !streamed &&
        (!last_response_bytes || *last_response_bytes <= context.hold->per_response);
    held_response held(worth_holding ? context.hold : nullptr, last_response_bytes.value_or(0));
    content_digest response_digest;
    if (context.fingerprint.empty()) context.fingerprint = response_fingerprint(cfg);
    response_digest.add(context.fingerprint);
    auto parse = [&](std::string_view bytes) -> asio::awaitable<void> {
        constexpr std::size_t piece = 64 * 1024;  // batches stay as small as the chunks make them
        for (std::size_t at = 0; at < bytes.size(); at += piece) {
            parser.feed(bytes.substr(at, piece));  // response_error marks the response broken
            co_await hand_on_ready();
        }
    };
    auto parse_held = [&]() -> asio::awaitable<void> {
        const held_bytes bytes = held.take();
        co_await parse(bytes.view());
    };
    // A held body enters the digest when it stops being held: at the end
    // (on the loader's thread when it may confirm the window), else here once
    // it no longer fits.
    auto finish_digest_with_held = [&] {
        response_digest.add(held.bytes());
        return response_digest.finish();
    };
    const body_sink sink = [&](std::string_view chunk) -> asio::awaitable<void> {
        if (lease_lost()) throw lease_stopped{};
        if (streamed) {
            streamed_bytes += chunk.size();
            if (streamed_bytes > context.hold->per_response) throw ticket_needed{};
            response_digest.add(chunk);
            co_return;
        }
        if (held.keep(chunk)) co_return;
        if (!held.empty()) {
            response_digest.add(held.bytes());
            co_await parse_held();
        }
        response_digest.add(chunk);
        co_await parse(chunk);
    };

    // While it is held, the client reads the body straight into the held
    // buffer (sink() then keeps it in place).
    const body_room room = [&](std::size_t wanted) { return held.room(wanted); };

    int http_status = 0;             // of the response, when one was read
    std::exception_ptr fetch_error;  // a programming error on the fetch side
    try {
        fetch_result fetched = co_await context.client.fetch(request, sink, room);
        http_status = fetched.http_status;
        if (fetched.ok()) {
            try {
                fetch_info info{fetched.http_status, fetched.duration, fetched.bytes, std::string()};
                bool confirmed = false;
                if (held.holding() && !may_confirm) {
                    // No digest to equal (a first load) or none may be
                    // equalled (--recheck): parsed now.
                    info.response_digest = finish_digest_with_held();
                    co_await parse_held();
                } else if (held.holding() || streamed) {
                    // The whole response is here (held, or streamed into the
                    // digest), unparsed: the loader may confirm the window
                    // from its digest alone. This frame waits for the
                    // verdict, so the held body and the digest stay put while
                    // the loader's thread reads them.
                    load_message ask;
                    ask.finish = info;
                    ask.unparsed = true;
                    ask.finish_digest = finish_digest_with_held;
                    co_await hand_on(std::move(ask));
                    auto [error, answer] = co_await verdicts.async_receive(asio::as_tuple(asio::use_awaitable));
                    if (error) throw loader_stopped{};
                    confirmed = answer.confirmed;
                    info.response_digest = std::move(answer.response_digest);
                    if (!confirmed && unticketed) throw ticket_needed{};
                    if (!confirmed) co_await parse_held();
                } else {
                    info.response_digest = response_digest.finish();
                }
                if (!confirmed) {
                    const parse_summary summary = parser.finish();
                    result.failed = all_rejected(summary, first_rejection);
                }
                if (!confirmed && !result.failed) {
                    co_await hand_on_ready();
                    load_message last;
                    last.finish = std::move(info);
                    co_await hand_on(std::move(last));
                }
            } catch (const response_error& error) {
                result.failed = classify_broken_body(error.what(), error.kind());
            }
        } else {
            result.failed = std::move(fetched.failure);
        }
    } catch (const loader_stopped&) {
        // The loader failed first; load_error says why.
    } catch (const lease_stopped&) {
        result.failed = lease_lost_failure(customer.id);
    } catch (const ticket_needed&) {
        result.needs_ticket = true;
    } catch (...) {
        fetch_error = std::current_exception();
    }
    if (result.failed || fetch_error || result.needs_ticket) queue.close();
    co_await done.async_receive(asio::use_awaitable);

    if (fetch_error) std::rethrow_exception(fetch_error);
    if (counts) {
        result.counts = counts;
        result.failed.reset();
    } else if (load_error) {
        try {
            std::rethrow_exception(load_error);
        } catch (const database_error& error) {
            // The database failed; whatever the fetch saw does not matter.
            result.failed = error.failure();
        } catch (const lease_stopped&) {
            result.failed = lease_lost_failure(customer.id);
        } catch (const loaded_meanwhile&) {
            result.needs_ticket = true;
        }
        // Anything else from the loader's side is a programming error: it propagates.
    } else if (!result.failed && !result.needs_ticket) {
        throw std::logic_error("a window attempt ended without a commit and without a failure");
    }
    // The ledger keeps the status of the response the attempt read, whatever
    // failed after it (a body cut short, the database).
    if (result.failed && result.failed->http_status == 0) result.failed->http_status = http_status;
    if (result.failed) redact(result.failed->message);
    co_return result;
}

#pragma GCC diagnostic pop

asio::awaitable<void> record_failure(window_context& context, const config& cfg,
                                     const window_key& key, const failure& failed) {
    try {
        db_workers::session session = co_await context.db.checkout();
        co_await session.run([&](pqxx::connection& connection) {
            record_window_failure(connection, cfg.database.schema, key, failed.http_status,
                                  failed.kind, failed.message);
        });
    } catch (const std::exception& error) {
        log_event(spdlog::level::err, "ledger.record_failed",
                  {{"customer", key.customer_id}, {"error", error.what()}});
    }
}

void log_failure(const customer_config& customer, const window& w, unsigned attempt,
                 const failure& failed, bool final) {
    log_event(final ? spdlog::level::warn : spdlog::level::info,
              final ? "window.failed" : "window.retry",
              {{"customer", customer.id},
               {"from", w.from_text()},
               {"to", w.to_text()},
               {"attempt", attempt},
               {"kind", to_string(failed.kind)},
               {"http_status", failed.http_status},
               {"error", failed.message}});
}

// What an operator needs to act on a held window: who, which window, the
// numbers, and the command that accepts the deletions.
void log_held(const config& cfg, const customer_config& customer, const window& w,
              const load_counts& c) {
    const auto& guard = cfg.sync.deletion_guard;
    log_event(spdlog::level::warn, "window.held",
              {{"customer", customer.id},
               {"from", w.from_text()},
               {"to", w.to_text()},
               {"would_delete", c.held_deletions},
               {"live", c.held_live_rows},
               {"accept_after", guard.accept_after.count() > 0 ? format_duration(guard.accept_after)
                                                                : std::string("never")},
               {"accept", "comeback-sync backfill -c " + cfg.source.string() + " --from " +
                              date::format("%F", w.first_day) + " --to " +
                              date::format("%F", w.end_day - date::days{1}) + " --customer " +
                              customer.id + " --accept-deletes"}});
}

}  // namespace

const std::string& executable_digest() {
    static const std::string digest = [] {
        if (std::string id = build_id(); !id.empty()) return "build-id " + id;
        std::ifstream file("/proc/self/exe", std::ios::binary);
        if (!file) return std::string();
        content_digest d;
        std::vector<char> buffer(64 * 1024);
        while (file.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || file.gcount() > 0) {
            d.add(std::string_view(buffer.data(), static_cast<std::size_t>(file.gcount())));
        }
        return file.bad() ? std::string() : "xxh3-128 " + d.finish();
    }();
    return digest;
}

std::string response_fingerprint(const config& cfg) {
    content_digest d;
    const auto line = [&](std::string_view name, std::string_view value) {
        d.add(name);
        d.add("=");
        d.add(std::to_string(value.size()));  // lengths first: no two settings read alike
        d.add(":");
        d.add(value);
        d.add("\n");
    };
    line("format", "comeback-sync response digest 1");
    line("executable", executable_digest());
    line("timezone", cfg.vitec.timezone);
    line("max_field_bytes", std::to_string(cfg.vitec.max_field_bytes));
    line("date_criteria", cfg.sync.date_criteria.name());
    line("contact_names", std::to_string(static_cast<int>(cfg.privacy.contact_names)));
    line("pseudonym_key", cfg.privacy.pseudonym_key.reveal());
    return d.finish();
}

failure_kind kind_of(const std::exception& error) {
    if (const auto* database = dynamic_cast<const database_error*>(&error)) return database->failure().kind;
    return failure_kind::internal_error;
}

asio::awaitable<window_outcome> sync_window(window_context& context, const config& cfg,
                                            const customer_config& customer, const window& w) {
    const window_key key = key_of(cfg, customer, w);
    const auto started = steady::now();
    window_outcome outcome;
    auto count_attempt = [&](std::optional<failure_kind> kind) {
        if (context.metrics) context.metrics->count_request(customer.id, outcome_label(kind));
    };

    const attempt_step attempt = [&](unsigned n) -> asio::awaitable<std::optional<failure>> {
        outcome.attempts = n;
        attempt_result result = co_await attempt_window(context, cfg, customer, w, key, true);
        if (result.needs_ticket) {
            // Sent without a ticket and not confirmed, or its window loaded
            // meanwhile: a good answer, counted, and the window fetched again
            // with a ticket within the same attempt.
            count_attempt(std::nullopt);
            result = co_await attempt_window(context, cfg, customer, w, key, false);
        }
        if (!result.counts) {
            count_attempt(result.failed->kind);
            co_return std::move(result.failed);
        }
        count_attempt(std::nullopt);
        outcome.counts = *result.counts;
        const load_counts& c = outcome.counts;
        if (c.held) {
            log_held(cfg, customer, w, c);
            co_return std::nullopt;
        }
        if (c.deletes_accepted != deletes_accepted::no) {
            log_event(spdlog::level::info, "window.deletes_accepted",
                      {{"customer", customer.id},
                       {"from", w.from_text()},
                       {"to", w.to_text()},
                       {"deleted", c.deleted},
                       {"by", c.deletes_accepted == deletes_accepted::span ? "span" : "command"}});
        }
        log_event(spdlog::level::info, "window.loaded",
                  {{"customer", customer.id},
                   {"from", w.from_text()},
                   {"to", w.to_text()},
                   {"attempts", n},
                   {"rows", c.rows_seen},
                   {"confirmed", c.confirmed},
                   {"unparsed", c.unparsed},
                   {"inserted", c.inserted},
                   {"updated", c.updated},
                   {"deleted", c.deleted},
                   {"undeleted", c.undeleted},
                   {"rejected", c.rejected},
                   {"unreadable_ids", c.unreadable_ids}});
        co_return std::nullopt;
    };
    bool database_lost = false;  // the last failure: wait for the database before the next attempt
    const failure_observer on_failure = [&](unsigned n, const failure& failed,
                                            std::optional<std::chrono::milliseconds> next_delay)
        -> asio::awaitable<void> {
        database_lost = is_database_outage(failed.kind);
        if (is_dropped(failed.kind)) {
            // Not a failure: the ledger keeps the newer load it has.
            log_event(spdlog::level::info, "window.dropped",
                      {{"customer", customer.id},
                       {"from", w.from_text()},
                       {"to", w.to_text()},
                       {"attempt", n},
                       {"kind", to_string(failed.kind)},
                       {"reason", failed.message}});
            co_return;
        }
        co_await record_failure(context, cfg, key, failed);
        log_failure(customer, w, n, failed, !next_delay);
    };
    // Shutting down, or the database still away after outage_grace: no new
    // attempt; the last failure stands.
    // The customer steps out of the cycle gate for the wait: another customer
    // may work meanwhile.
    const retry_wait wait = [&](std::chrono::milliseconds delay) -> asio::awaitable<bool> {
        if (context.pass) context.pass->step_out();
        bool go_on = true;
        if (database_lost && context.database &&
            !co_await context.database->wait_until_answering(cfg.database.outage_grace)) {
            go_on = false;
        } else if (context.still_held && !context.still_held()) {
            go_on = false;
        } else {
            go_on = co_await context.shutdown.sleep(delay);
        }
        if (context.pass) co_await context.pass->step_in();
        co_return go_on;
    };

    std::exception_ptr bug;
    try {
        const retry_result retried =
            co_await run_with_retries(cfg.vitec.retry, context.rng, attempt, on_failure, wait);
        outcome.committed = retried.ok();
        outcome.last_failure = retried.last_failure;
    } catch (...) {
        bug = std::current_exception();
    }
    if (bug) {
        // Never retried: counted, recorded and logged with the window here, then
        // handed to the customer's loop, which backs the customer off.
        const failure internal{failure_kind::internal_error, 0, "internal error: " + message_of(bug),
                               std::nullopt};
        count_attempt(internal.kind);
        co_await record_failure(context, cfg, key, internal);
        log_failure(customer, w, outcome.attempts, internal, true);
    }

    outcome.duration = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started);
    if (context.metrics && !outcome.dropped()) {
        if (outcome.held()) {
            context.metrics->window_held(customer.id, outcome.duration);
        } else if (outcome.committed) {
            const load_counts& c = outcome.counts;
            context.metrics->window_succeeded(customer.id,
                                              {c.inserted, c.updated, c.deleted, c.undeleted, c.rejected, c.confirmed},
                                              outcome.duration);
        } else {
            context.metrics->window_failed(customer.id, outcome.duration);
        }
    }
    if (bug) std::rethrow_exception(bug);
    co_return outcome;
}

}  // namespace comeback
