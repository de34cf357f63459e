#pragma once
// The sync_windows ledger: one row per (customer, date criteria, window),
// saying which parts of time are loaded, when, and how the last attempt went.
// Every statement that reads or writes it is here (statements in
// ledger_sql.hpp): the daemon's planning and reads, the status command's
// summary, failed attempts, and, inside a window loader's transaction, the
// last load a new one may confirm, the complete load's row and the changed_at
// marks on other windows.

#include "load/pqxx_fwd.hpp"
#include "model/comeback.hpp"
#include "model/date_criteria.hpp"
#include "model/failure.hpp"
#include "plan/windows.hpp"

#include <date/date.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace comeback::sql {
class statement_batch;
}

namespace comeback {

// A fetch's place in the order of its customer's fetches (load/fencing.hpp).
using fetch_ticket = std::int64_t;

// The ledger's key for a window: (customer, date criteria, first day, end day).
struct window_key {
    std::string customer_id;
    comeback::date_criteria date_criteria;
    date::local_days first_day;
    date::local_days end_day;  // exclusive day; `to` is inclusive
    instant from;              // the window's bounds as instants (UTC)
    instant to;
};

// "customer M1 Occurrence window 2024-05-06..2024-05-13", for error messages.
std::string describe_window(const window_key& key);

// Throws std::invalid_argument naming the window when the key is unusable: no
// customer, no criteria, or bounds that end before they start.
void check_window_key(const window_key& key);

struct ledger_entry {
    date::local_days first_day;
    date::local_days end_day;  // exclusive
    std::string status;        // "pending", "complete", "failed" or "held"
    int attempts = 0;
    std::optional<instant> fetched_at;  // the last complete load
    std::optional<std::string> last_error;
    std::optional<instant> attempted_at;  // the last attempt of any outcome
    std::optional<int> last_http_status;
    std::optional<int> held_deletions;  // held: what the load would soft-delete
    std::optional<int> held_live_rows;  // of this many live stored comebacks
    // Read by plan_and_read_ledger and read_ledger: the size of the last complete load's
    // response, when it recorded the response's digest, so that the next
    // response may confirm the window unparsed (window_loader.hpp,
    // confirm_unparsed).
    std::optional<std::uint64_t> confirmable_bytes;
};

// The entry of the window first_day..end_day among `entries`, or null.
const ledger_entry* find_window(const std::vector<ledger_entry>& entries, date::local_days first_day,
                                date::local_days end_day);

// A window whose deletions wait (status 'held'), for `status` and summaries.
struct held_window {
    std::string customer_id;
    std::string date_criteria;
    date::local_days first_day;
    date::local_days end_day;  // exclusive
    int deletions = 0;         // what its load would soft-delete
    int live_rows = 0;         // of this many live stored comebacks
    std::optional<instant> held_since;  // when a fetch first returned the held content
    std::optional<instant> attempted_at;
};

// "the load would soft-delete 30 of the window's 50 live comebacks": the
// reason a held window gives, in the ledger, logs and status.
std::string held_reason(std::size_t deletions, std::size_t live_rows);

struct customer_status {
    std::string customer_id;
    std::optional<instant> last_success;
    int windows_complete = 0;
    int windows_failed = 0;
    int windows_pending = 0;
    // The window whose last complete fetch is oldest (never fetched first).
    std::optional<date::local_days> stalest_window_first_day;
    std::optional<instant> stalest_window_fetched_at;
    std::optional<std::string> last_error;
    std::optional<instant> last_error_at;  // when the attempt that left last_error was made
    int windows_held = 0;
    // last_error's failure kind (model/failure.hpp's label); none when it is
    // a held window's reason, or was recorded before migration 009.
    std::optional<std::string> last_error_kind;
};

// One window of any customer.
struct customer_ledger_entry {
    std::string customer_id;
    ledger_entry entry;
};

// The functions taking a connection run their own short transaction in
// `schema` and throw std::invalid_argument (a bad schema name or window key)
// and pqxx exceptions (the database failed; nothing was written).

// The customer's ledger rows for one date criteria, ordered by first_day.
std::vector<ledger_entry> read_ledger(pqxx::connection& connection, std::string_view schema,
                                      std::string_view customer_id, const date_criteria& criteria);

// How a customer's cycle and a backfill begin, in one transaction: a
// 'pending' ledger row inserted for each of `windows` that has none (existing
// rows are left alone; one statement); the raw text of the customer's
// rejected rows last seen `rejected_raw_retention` ago or longer emptied
// (privacy.rejected_raw_retention); then the customer's rows read as
// read_ledger() reads them.
std::vector<ledger_entry> plan_and_read_ledger(pqxx::connection& connection, std::string_view schema,
                                               std::string_view customer_id, const date_criteria& criteria,
                                               std::span<const window> windows,
                                               std::chrono::seconds rejected_raw_retention);

// Every customer's ledger rows for one date criteria, by customer_id, then
// first_day, handed to `each` one at a time with the fields the status page
// shows (days, status, fetched_at; the others left empty). One repeatable-read
// transaction, so one snapshot of the ledger, reading `chunk_rows` rows a
// statement (at least 1): however many windows the ledger holds, neither libpq
// nor this function holds more than a chunk of them.
inline constexpr std::size_t ledger_read_chunk_rows = 10000;
void for_each_ledger_window(pqxx::connection& connection, std::string_view schema,
                            const date_criteria& criteria, std::size_t chunk_rows,
                            const std::function<void(const customer_ledger_entry&)>& each);

// One row per customer with ledger rows, from the sync_status view, by customer_id.
std::vector<customer_status> read_sync_status(pqxx::connection& connection,
                                              std::string_view schema);

// Every held window of every customer, oldest hold first.
std::vector<held_window> read_held_windows(pqxx::connection& connection, std::string_view schema);

// Records a failed attempt: attempts + 1, status 'failed', the HTTP status
// (0: none, stored as NULL), the failure's kind (its label) and the error
// (cleaned to storable text and cut to 2000 bytes). What the window's last
// complete load recorded stays. Never touches comebacks.
void record_window_failure(pqxx::connection& connection, std::string_view schema,
                           const window_key& key, int http_status, failure_kind kind,
                           std::string_view error);

// Inside a window loader's transaction: search_path is the schema and the
// customer's lock is held. `stamp` is the load's instant as timestamptz text.
// They throw pqxx exceptions, leaving the transaction to roll back.

// What the ledger says of the window's last complete load.
struct last_load {
    std::optional<instant> fetched_at;  // none: never loaded
    // The window is held on this very content: for how long fetches have
    // returned it. None when it is not held, or held on other content.
    std::optional<std::chrono::seconds> held_same_for;
    // It saw the same content digest or the same response digest, nothing
    // changed the window's data since, and the window was compared row by row
    // less than a day before the load's stamp: the stored rows are what
    // comparing them again would leave.
    bool confirms = false;
    std::size_t rows_seen = 0;  // of that load, when it confirms
    std::size_t rows_duplicate = 0;
    std::size_t rows_rejected = 0;
    std::optional<fetch_ticket> ticket;  // of the fetch it loaded (load/fencing.hpp)
};

// What a load reads before it writes, in one round trip.
struct load_start {
    // The load's one instant for every row it writes, as timestamptz text:
    // never earlier than a stamp of the customer's earlier loads, whatever
    // the server's clock does (see sql::ledger::read_load_start).
    std::string stamp;
    last_load last;
    // Asked for and the window does not confirm: whether any live comeback of
    // the customer is stored in the window's occurs_at range.
    std::optional<bool> live_rows_in_range;
};
// What read_load_start is to do besides reading.
struct load_start_options {
    // Probe for live rows in the window's range when it does not confirm.
    bool probe_live_rows = false;
};
// Queues the read in a load's batch, under the customer's lock; `start` is
// filled in when the batch is sent, and must outlive that. Either digest may
// be unknown (empty): it then confirms nothing.
void read_load_start(sql::statement_batch& batch, const window_key& key, std::string_view content_digest,
                     std::string_view response_digest, load_start_options options, load_start& start);

// The customer's other windows whose data a load changed: every window when
// `all_windows` (a renamed entity may be named by any of them), else those
// overlapping the occurs_at range from..to.
struct changed_windows {
    bool all_windows = false;
    instant from{};
    instant to{};
};

// What a complete load writes to its window's ledger row.
struct complete_load {
    int http_status = 200;
    std::uint64_t response_bytes = 0;
    std::chrono::milliseconds fetch_duration{0};
    std::chrono::milliseconds load_duration{0};
    std::size_t rows_seen = 0;
    std::size_t rows_duplicate = 0;
    std::size_t rows_changed = 0;
    std::size_t rows_rejected = 0;
    std::string content_digest;   // empty: the ledger keeps the one it has
    std::string response_digest;  // empty: unknown (stored as NULL)
    bool changed_data = false;  // moves changed_at
    bool compared = false;      // compared row by row (not confirmed): moves compared_at
    std::optional<fetch_ticket> ticket;  // the fetch's (load/fencing.hpp); empty: keep the row's
    // Without a ticket: record the customer's counter as it stands instead, as
    // a first load fetched without one does (load/fencing.hpp).
    bool ticket_from_counter = false;
    // Other windows this load changed data of: their changed_at is set to the
    // stamp in the same statement, so none of them confirms its next load
    // without comparing rows.
    std::optional<changed_windows> others_changed;
};
// Status 'complete', attempts + 1, last_error cleared, fetched_at = stamp,
// the window no longer held.
// Queued in the load's batch, which sends it with the commit.
void record_complete_load(sql::statement_batch& batch, const window_key& key,
                          std::string_view stamp, const complete_load& load);

// What a held load writes to its window's ledger row: nothing else of the
// load is written.
struct held_load {
    int http_status = 200;
    std::string content_digest;  // of the held content
    std::size_t deletions = 0;
    std::size_t live_rows = 0;
};
// Status 'held', attempts + 1, last_error = held_reason(); held_since kept
// while the held content stays the same, else `stamp`. What the last complete
// load recorded (fetched_at, counts, content digest) stays, so the window is
// never confirmed against the held content.
// Queued in the load's batch, as record_complete_load.
void record_held_load(sql::statement_batch& batch, const window_key& key, std::string_view stamp,
                      const held_load& load);

}  // namespace comeback
