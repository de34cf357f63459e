#pragma once
// Loading one fetched window into PostgreSQL: one transaction, all or nothing.
// All SQL of the project lives in etl/load/; the loader's statements are in
// window_loader_sql.hpp, the ledger's (window_key, record_window_failure) in
// ledger.hpp.

#include "load/ledger.hpp"
#include "load/pqxx_fwd.hpp"
#include "model/comeback.hpp"
#include "model/deletion_guard.hpp"
#include "model/privacy.hpp"
#include "normalize/normalize.hpp"

#include <date/date.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

class contact_memo;

struct fetch_info {
    int http_status = 200;
    std::chrono::milliseconds duration{0};
    std::uint64_t bytes = 0;
    // content_digest (hex) of the response body and of what decides how it is loaded
    // (sync/response_digest.hpp); empty: unknown. Recorded in the ledger, so a
    // later response with the same digest can confirm the window unparsed.
    std::string response_digest;
};

// Why a load applied deletions the guard would have held.
enum class deletes_accepted {
    no,       // nothing was held (or nothing was deleted)
    span,     // the same content came back over sync.deletion_guard.accept_after
    command,  // load_options::accept_deletes (backfill --accept-deletes)
};

struct load_counts {
    std::size_t rows_seen = 0;   // distinct comebacks in the response
    std::size_t duplicates = 0;  // extra occurrences of an id within the response (last won)
    std::size_t inserted = 0;
    std::size_t updated = 0;
    std::size_t deleted = 0;     // soft-deleted: in the window before, absent now
    std::size_t undeleted = 0;
    std::size_t rejected = 0;
    // The response equalled the window's last complete load and nothing had
    // changed the window's data since, so it was confirmed without comparing
    // rows (rows_seen and duplicates are the last load's).
    bool confirmed = false;
    // Confirmed from the response digest alone: the response was not parsed
    // (confirm_unparsed).
    bool unparsed = false;
    // The load would have soft-deleted held_deletions of the window's
    // held_live_rows live comebacks, which the deletion guard does not allow:
    // nothing of it was written but the ledger row (status 'held').
    bool held = false;
    std::size_t held_deletions = 0;
    std::size_t held_live_rows = 0;
    comeback::deletes_accepted deletes_accepted = comeback::deletes_accepted::no;
    // Rejected elements without a readable id: they may be any stored
    // comeback, so the load deleted nothing. Confirmed unparsed: the last
    // load's rejected rows without one (identical elements are one row).
    std::size_t unreadable_ids = 0;
    // Messages the load sent the server and waited for: its batches and the
    // statements it ran on their own (sql::statement_batch). Not stored; what
    // a load costs in round trips, for tests and benches.
    std::size_t round_trips = 0;
    std::size_t changed() const { return inserted + updated + deleted + undeleted; }
};

struct load_options {
    // Compare every row with the database even when the response equals the
    // window's last complete load (backfill --recheck): repairs rows changed
    // by hand in the database.
    bool recheck = false;
    // Apply deletions the guard would hold (backfill --accept-deletes).
    bool accept_deletes = false;
    deletion_guard_config deletion_guard{};
    // omit: every contact name this load writes is NULL, whatever was staged
    // (normalize() applies keep and pseudonymize to the names themselves).
    comeback::contact_names contact_names = comeback::contact_names::keep;
    // How long rejected rows' raw text is kept after they were last seen
    // (privacy.rejected_raw_retention): 0 keeps none of the raw text a load
    // stores. Older raw text ages out as the customer's cycles begin
    // (plan_and_read_ledger).
    std::chrono::seconds rejected_raw_retention{90 * 24 * 3600};
    // The ticket the fetch took before it began (load/fencing.hpp): the load
    // is refused with stale_fetch_error when the window's last committed load
    // had one no lower, and records it when it commits. None: not fenced; a
    // confirm_unparsed() without one records the customer's counter instead.
    std::optional<std::int64_t> fetch_ticket{};
    // Without fetch_ticket: the fetch took none because the window had never
    // been loaded when its turn read the ledger (load/fencing.hpp). The load
    // goes on only while that is still so under the customer's lock, else it
    // throws loaded_meanwhile (load/database_failure.hpp) having written
    // nothing; it records the customer's counter as the window's ticket.
    bool first_load_unticketed = false;
    // What this process's loads have stored of the customers' contacts
    // (load/contact_memo.hpp): contacts it knows to be stored as the window
    // names them are not looked up again, and what the load merges is learnt
    // once it commits. Null: every contact is looked up.
    contact_memo* contacts = nullptr;
    // The load's transaction commits asynchronously (synchronous_commit off
    // for it alone): COMMIT returns before its WAL reaches the disk, and a
    // crash of the server within the next moment (at most three times its
    // wal_writer_delay) loses the load whole, its ledger row with it, so the
    // window is only fetched and loaded again (docs/design.md, "Loads that
    // commit lazily"). Not with `contacts`: the memo may learn only from loads
    // that outlive a crash (else std::logic_error). Whoever loads lazily makes
    // its loads durable before it reports them done for good
    // (make_durable in load/fencing.hpp).
    bool commit_lazily = false;
};

// One window's transaction. Its statements go to the server in batches
// (load/statement_batch.hpp): the constructor queues BEGIN and the customer's
// transaction advisory lock, which are sent with the read of the window's last
// load at commit(), where the fetch ticket (load_options) is checked, or
// earlier, when a large load begins to stream into staging. The constructor
// sets the session's search_path to the schema. add() formats batches into
// staging (held in memory up to a few MiB, streamed beyond), and commit()
// either confirms the window's last load,
// when the content digest matches and nothing changed the window since, or
// merges, soft-deletes and writes history; then writes rejects and the ledger
// row, and commits. A load the deletion guard holds writes only its ledger row
// (load_counts::held).
// Destroyed without commit(): rolled back, nothing of the window remains.
// Throws pqxx exceptions (infrastructure), stale_fetch_error (a newer fetch of
// the window committed first) and std::logic_error (misuse).
class window_loader {
public:
    // A first load of at most this many comebacks skips any that exist after
    // all instead of inserting inside a savepoint (sql::window_loader::
    // insert_new_skipping_stored): two round trips fewer for the small windows
    // a fleet keeps fresh, while a large one keeps the plain insert.
    static constexpr std::size_t small_window_rows = 1000;

    window_loader(pqxx::connection& connection, std::string schema, window_key key,
                  load_options options = {});
    ~window_loader();
    window_loader(const window_loader&) = delete;
    window_loader& operator=(const window_loader&) = delete;

    void add(const normalized_batch& batch, std::span<const rejection> rejections);
    load_counts commit(const fetch_info& info);


private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A response to confirm from its digest alone (confirm_unparsed).
struct unparsed_response {
    window_key key;
    fetch_info info;  // its response_digest is what is compared
    // The ticket the fetch took (load/fencing.hpp); none: it was sent without
    // one, and a confirmation records the customer's counter instead.
    std::optional<fetch_ticket> ticket;
};

// What became of one response offered to confirm_unparsed().
struct confirmation {
    std::optional<load_counts> counts;  // set when the window was confirmed
    // stale_fetch_error: a fetch that may have begun later already committed
    // the window. Only this response's; the others are as they say.
    std::exception_ptr refused;
};

// Confirms windows from their responses' digests alone, unparsed, all in one
// statement of its own transaction (sql::window_loader::confirm_unparsed):
// each window whose ledger row says its last complete load read a response
// with that digest, and which may be confirmed (the rule of
// window_loader::commit()), has the confirmation recorded and its counts
// returned. The others are written nothing and get no counts: parse such a
// response and load it with a window_loader, which applies the same rule
// again under the customer's lock. A response without a digest is never
// confirmed. The transaction commits asynchronously (synchronous_commit off):
// it changed no data, and were the commit lost in a crash of the server the
// windows would only be fetched again. At most one response per customer
// (else std::logic_error): a customer's loads are stamped one after another.
// One confirmation per response, in order. Sets the session's search_path to
// the schema. Throws pqxx exceptions for the whole batch.
std::vector<confirmation> confirm_unparsed(pqxx::connection& connection, std::string_view schema,
                                           std::span<const unparsed_response> responses);

// One window's response, as above, with the load's options: never confirms
// under load_options::recheck; throws what refused it (stale_fetch_error).
std::optional<load_counts> confirm_unparsed(pqxx::connection& connection, std::string_view schema,
                                            const window_key& key, const fetch_info& info,
                                            const load_options& options);

}  // namespace comeback
