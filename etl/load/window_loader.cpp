#include "load/window_loader.hpp"

#include "load/contact_memo.hpp"
#include "load/content_digest.hpp"
#include "load/copy_text.hpp"
#include "load/database_failure.hpp"
#include "load/fencing.hpp"
#include "load/identifier.hpp"
#include "load/prepared.hpp"
#include "load/privacy.hpp"
#include "load/sql_time.hpp"
#include "load/statement.hpp"
#include "load/statement_batch.hpp"
#include "load/window_loader_sql.hpp"

#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <array>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace comeback {

namespace {

// The kinds users, groups and offices are staged under in load_entities, in
// the order of normalized_batch's sets (sql::window_loader::merge_entities
// reads them). Contacts, one or more per window row, travel with their
// comebacks in load_comebacks.
const std::array<const char*, 3> entity_kinds{"user", "user_group", "office"};

// The staging tables' columns in the order copy_text writes them (see
// sql::window_loader::create_staging). A comeback row's first column is
// whether its contact is known (contact_memo), which the content digest
// leaves out: the same response digests the same whatever the memo knew.
const std::vector<std::string> comeback_columns{
    "contact_known", "idx", "comeback_id", "contact_id", "booked_by_user_id", "assigned_user_id",
    "assigned_group_id", "assigned_office_id", "state", "origin", "occurs_at_us",
    "booked_at_us", "contact_name"};
const std::vector<std::string> entity_columns{"seq", "kind", "entity_id", "name"};
const std::vector<std::string> rejection_columns{"idx", "comeback_id", "reason", "raw"};

// One COPY ... FROM STDIN of preformatted rows, sent 64 KiB at a time (COPY
// data need not end at a row, but tablewriter's chunks must: it adds a
// newline to each, after copying the chunk without the one it ends in, if
// it does; so each goes without its last newline, and is copied once less).
// pqxx 6.4's only public way to send preformatted COPY data is tablewriter,
// deprecated in favour of stream_to, which cannot take it. The server
// reports bad data when the COPY ends.
void send_copy(pqxx::transaction_base& tx, const char* table, const std::vector<std::string>& columns,
               std::string_view rows) {
    if (rows.empty()) return;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    pqxx::tablewriter writer{tx, table, columns.begin(), columns.end()};
#pragma GCC diagnostic pop
    constexpr std::size_t chunk = 64 * 1024;
    while (!rows.empty()) {
        std::size_t take = rows.size();
        if (take > chunk) {
            const auto end = rows.substr(0, chunk).rfind('\n');
            take = end == std::string_view::npos ? rows.find('\n') + 1 : end + 1;
        }
        writer.write_raw_line(std::string(rows.substr(0, take - 1)));
        rows.remove_prefix(take);
    }
    writer.complete();
}

// Id -> name of one batch's entities of one kind (the name may be unknown).
using name_index = std::unordered_map<std::string_view, const entity*>;

name_index index_names(const std::vector<entity>& entities) {
    name_index names;
    names.reserve(entities.size());
    for (const auto& e : entities) names[e.id] = &e;
    return names;
}

// The name of an entity a comeback names, or of none (null: it names none).
const std::optional<std::string>& name_of(const entity* e) {
    static const std::optional<std::string> no_name;
    return e ? e->name : no_name;
}

// A load's content below this many formatted bytes is held in memory until
// commit, so a load that turns out to confirm its window's last one never
// stages it; a larger one is streamed into staging as it arrives (bounded
// memory), and still confirms without comparing rows when it can.
constexpr std::size_t hold_bytes = 4 * 1024 * 1024;

// Staging tables larger than this on disk (about 16 pages, some 80 small
// windows' rows, live or dead) are truncated rather than emptied row by row
// when a load begins staging (sql::window_loader::begin_load says which): the
// statements that read staging scan its dead rows too. A load that stages more
// than this many bytes of rows truncates it before its own COMMIT.
constexpr std::int64_t truncate_staging_above_bytes = 128 * 1024;

// A load whose held comebacks and entities take at most this many formatted
// bytes when it stages sends them as array parameters of the statement that
// empties staging (sql::window_loader::stage_rows), in the batch of the
// statements that read them: no round trip of its own, where two COPYs take
// four. A larger one COPYs them: COPY reads its text faster than
// the server reads array literals, and sends it 64 KiB at a time.
constexpr std::size_t array_stage_bytes = 256 * 1024;

// Bumped whenever the loader's formatting or merge rules change what a load
// writes for the same response, so no window confirms across such a change.
constexpr std::string_view digest_version = "comeback-sync load content 2\n";

}  // namespace

struct window_loader::impl {
    impl(pqxx::connection& connection, std::string schema_name, window_key window,
         load_options load_options)
        : schema(std::move(schema_name)),
          key(std::move(window)),
          options(load_options),
          started(std::chrono::steady_clock::now()),
          tx(connection, "load window"),
          batch(tx) {
        digest.add(digest_version);
        if (options.contacts) memo.emplace(*options.contacts, key.customer_id);
    }

    std::string schema;
    window_key key;
    load_options options;
    std::chrono::steady_clock::time_point started;
    // The statements go in batches (sql::statement_batch), sent where the
    // load needs a result to go on: its start (BEGIN, the lock, the last
    // load), its counts, its commit. A statement run directly goes through
    // direct(), which sends what is queued first.
    sql::batched_transaction tx;
    sql::statement_batch batch;
    std::size_t direct_runs = 0;
    // The session's staging tables are created when a load first needs
    // them: a connection that only confirms windows from their response
    // digest never writes the catalog, and has no tables to drop when it ends.
    // Known once begin_load's batch is sent.
    std::optional<bool> staging_missing;
    bool staging_large = false;  // truncate rather than delete (begin_load)
    bool staging_ready = false;  // created or emptied for this load
    std::size_t staged_bytes = 0;  // of rows this load sent to staging, as text
    long long entity_seq = 0;
    std::size_t staged = 0;  // comebacks added, duplicates included
    load_counts counts;      // filled in as commit() merges
    bool finished = false;

    // What add() formatted and has not yet sent to the staging tables.
    copy_text comebacks;
    copy_text entities;
    copy_text rejections;
    content_digest digest;
    std::string digest_tail;  // scratch: the names one comeback row refers to
    // Scratch: per comeback of a batch, its contact, booked-by user, assigned
    // user, group and office in the batch (null when it names none).
    std::vector<std::array<const entity*, 5>> resolved;
    // With load_options::contacts: the window's contacts as the memo sees them.
    std::optional<contact_memo::window> memo;

    // What changed stored data in this load, for the ledger's changed_at.
    std::size_t renamed = 0;  // stored entities that took a new name
    std::optional<instant> changed_from, changed_to;  // occurs_at range of changed rows
    bool changed_without_occurs_at = false;


    // Formats one batch into the staging buffers and the digest. Every
    // entity a comeback names must come with the batch, as normalize()
    // guarantees; these are the foreign keys of comebacks, checked here
    // rather than by constraints (see schema/001_initial.sql). A miss is a
    // bug upstream: committing it would leave the report without a name.
    void format(const normalized_batch& batch) {
        const name_index contacts = index_names(batch.contacts);
        const name_index users = index_names(batch.users);
        const name_index groups = index_names(batch.user_groups);
        const name_index offices = index_names(batch.offices);
        auto resolve = [&](const comeback_record& c, const std::optional<std::string>& id,
                           const name_index& known, const char* what) -> const entity* {
            if (!id) return nullptr;
            auto found = known.find(*id);
            if (found == known.end()) {
                throw std::logic_error("window_loader::add: comeback " + c.id + " of customer " +
                                       batch.customer_id + " refers to " + what + " " + *id +
                                       ", which the batch does not carry");
            }
            return found->second;
        };
        // Resolve everything first: a refused batch formats nothing.
        resolved.clear();
        resolved.reserve(batch.comebacks.size());
        for (const auto& c : batch.comebacks) {
            resolved.push_back({resolve(c, c.contact_id, contacts, "contact"),
                                resolve(c, c.booked_by_user_id, users, "user"),
                                resolve(c, c.assigned_user_id, users, "user"),
                                resolve(c, c.assigned_group_id, groups, "user group"),
                                resolve(c, c.assigned_office_id, offices, "office")});
        }
        // Per contact of the batch (its place in batch.contacts): known.
        // Null without a memo: none is.
        const std::vector<bool>* known =
            memo ? &memo->sight(batch.contacts, std::chrono::steady_clock::now()) : nullptr;

        // The digest takes each comeback row with the names it refers to, so it
        // does not depend on how the response was cut into batches.
        for (std::size_t i = 0; i < batch.comebacks.size(); ++i) {
            const comeback_record& c = batch.comebacks[i];
            const auto& [contact, booked_by, assigned_user, group, office] = resolved[i];
            const bool contact_known = contact && known && (*known)[contact - batch.contacts.data()];
            comebacks.plain(contact_known ? "t" : "f");
            const std::size_t row_start = comebacks.size() + 1;  // past the tab
            comebacks.number(static_cast<long long>(c.index));
            comebacks.text(c.id);
            comebacks.text(c.contact_id);
            comebacks.text(c.booked_by_user_id);
            comebacks.text(c.assigned_user_id);
            comebacks.text(c.assigned_group_id);
            comebacks.text(c.assigned_office_id);
            comebacks.text(c.state);
            comebacks.text(c.origin);
            comebacks.micros(c.occurs_at);
            comebacks.micros(c.booked_at);
            comebacks.text(name_of(contact));
            comebacks.end_row();
            digest.add(comebacks.view().substr(row_start));
            digest_tail.clear();
            for (const entity* e : {booked_by, assigned_user, group, office}) {
                if (const auto& name = name_of(e)) copy_text::append_escaped(digest_tail, *name);
                else digest_tail += "\\N";
                digest_tail += '\t';
            }
            digest_tail += '\n';
            digest.add(digest_tail);
        }
        staged += batch.comebacks.size();

        const std::array<const std::vector<entity>*, 3> sets{&batch.users, &batch.user_groups,
                                                             &batch.offices};
        for (std::size_t i = 0; i < sets.size(); ++i) {
            for (const auto& e : *sets[i]) {
                entities.number(entity_seq++);
                entities.plain(entity_kinds[i]);
                entities.text(e.id);
                entities.text(e.name);
                entities.end_row();
            }
        }
    }

    void format(std::span<const rejection> batch) {
        for (const auto& r : batch) {
            if (!r.id) ++counts.unreadable_ids;
            const std::size_t row_start = rejections.size();
            rejections.number(static_cast<long long>(r.index));
            rejections.text(r.id);
            rejections.text(r.reason);
            rejections.text(r.raw);
            rejections.end_row();
            digest.add("rejected\t");
            digest.add(rejections.view().substr(row_start));
        }
        counts.rejected += batch.size();
    }

    // The transaction, for a statement run on its own: what is queued goes
    // first.
    pqxx::transaction_base& direct() {
        batch.send();
        ++direct_runs;
        return tx;
    }

    // Staging, created or emptied of what an earlier load of the session
    // staged (see sql::window_loader::stage_rows), once per load and only by
    // a load that stages: a window confirmed with nothing to stage leaves it
    // as it is. With `with_held`, the held comebacks and entities go in the
    // same statement. Queued, unless staging must be created first.
    void ensure_staging(bool with_held) {
        if (staging_ready) return;
        if (!staging_missing.has_value()) batch.send();  // begin_load says what staging is
        if (*staging_missing) {
            direct().exec0(sql::window_loader::create_staging);
        } else if (staging_large) {
            batch.add_command(sql::window_loader::truncate_staging.text());
        }
        if (with_held || !*staging_missing) queue_stage_rows(with_held);
        staging_ready = true;
        if (with_held) {
            staged_bytes += comebacks.size() + entities.size();
            comebacks.clear();
            entities.clear();
        }
    }

    void queue_stage_rows(bool with_held) {
        std::vector<std::optional<std::string>> values;
        values.reserve(comeback_columns.size() + entity_columns.size());
        for (const auto& [rows, columns] : {std::pair{&comebacks, &comeback_columns},
                                            std::pair{&entities, &entity_columns}}) {
            for (auto& array : copy_text::array_literals(with_held ? rows->view() : std::string_view{},
                                                         columns->size())) {
                values.emplace_back(std::move(array));
            }
        }
        const auto& s = sql::window_loader::stage_rows;
        batch.add_values(s, values, sql::expect_no_rows(s));
    }

    void copy_to_staging(const char* table, const std::vector<std::string>& columns, std::string_view rows) {
        send_copy(direct(), table, columns, rows);
        staged_bytes += rows.size();
    }

    void stage_rejections() {
        if (rejections.size() == 0) return;
        ensure_staging(false);
        copy_to_staging("load_rejections", rejection_columns, rejections.view());
        rejections.clear();
    }

    // Everything held, into staging made ready for this load: the statements
    // of a compared window read staging, whatever it holds. A small load's
    // rows go with the statement that makes staging ready.
    void stage_all() {
        ensure_staging(!staging_ready && comebacks.size() + entities.size() <= array_stage_bytes);
        if (comebacks.size() > 0) copy_to_staging("load_comebacks", comeback_columns, comebacks.view());
        comebacks.clear();
        if (entities.size() > 0) copy_to_staging("load_entities", entity_columns, entities.view());
        entities.clear();
        stage_rejections();
    }

    std::size_t held() const { return comebacks.size() + entities.size() + rejections.size(); }

    void widen_change_range(instant low, instant high) {
        if (!changed_from || low < *changed_from) changed_from = low;
        if (!changed_to || high > *changed_to) changed_to = high;
    }

    void note_change_range(const pqxx::field& from, const pqxx::field& to) {
        if (from.is_null() || to.is_null()) return;
        widen_change_range(sql_time::from_micros(from.as<long long>()),
                           sql_time::from_micros(to.as<long long>()));
    }

    // Entities first: comebacks refer to them. Counts the stored entities that
    // took a new name (see sql::window_loader::merge_entities).
    void merge_entities(const std::string& stamp) {
        const bool keep_contact_names = options.contact_names != contact_names::omit;
        const auto& s = sql::window_loader::merge_entities;
        batch.add(s, [this, &s](const pqxx::result& rows) { renamed += sql::single_row(rows, s)[0].as<std::size_t>(); },
                  key.customer_id, stamp, keep_contact_names);
    }

    // Whether this load soft-deletes at all. Only a window filtered on
    // occurs_at says which comebacks of that time range exist; for any other
    // criteria the loader cannot tell which stored rows the response should
    // have held. A rejected element without a readable id may be any stored
    // comeback of the window: deleting what the response seems to lack could
    // delete it.
    bool deletes() const { return key.date_criteria.filters_occurs_at() && counts.unreadable_ids == 0; }

    // The deletion guard, before anything is written: true when the load
    // must be held (counts.held and its numbers set). Deletions it would
    // hold are applied when the operator accepts them, or when the same
    // content has come back over accept_after (counts.deletes_accepted).
    bool hold_deletions(const last_load& last) {
        std::size_t deletions = 0;
        std::size_t live = 0;
        const auto& s = sql::window_loader::count_deletions;
        batch.add(s, [&](const pqxx::result& rows) {
            const pqxx::row row = sql::single_row(rows, s);
            deletions = row[0].as<std::size_t>();
            live = row[1].as<std::size_t>();
        }, key.customer_id, sql_time::micros(key.from), sql_time::micros(key.to));
        batch.send();
        if (!options.deletion_guard.holds(deletions, live)) return false;
        const auto span = options.deletion_guard.accept_after;
        if (options.accept_deletes) {
            counts.deletes_accepted = deletes_accepted::command;
        } else if (span.count() > 0 && last.held_same_for && *last.held_same_for >= span) {
            counts.deletes_accepted = deletes_accepted::span;
        } else {
            counts.held = true;
            counts.held_deletions = deletions;
            counts.held_live_rows = live;
        }
        return counts.held;
    }

    // A window with no live stored rows in its range (a first load) most
    // likely holds only comebacks the database has never seen: they are
    // inserted without looking each one up first. Should one exist after all
    // (rescheduled from another window, or deleted), the insert fails, its
    // savepoint is rolled back, and merge_comebacks() does it the general way.
    // A small window skips such a one instead and saves the savepoint's two
    // round trips (insert_new_skipping_stored). Returns whether every
    // comeback was inserted; if not, merge_comebacks() does the rest.
    bool insert_all_new(const std::string& stamp) {
        if (staged <= window_loader::small_window_rows) {
            const auto& s = sql::window_loader::insert_new_skipping_stored;
            batch.add(s, [this, &s](const pqxx::result& rows) {
                const pqxx::row row = sql::single_row(rows, s);
                counts.inserted = row[0].as<std::size_t>();
                note_change_range(row[1], row[2]);
                changed_without_occurs_at = changed_without_occurs_at || row[3].as<bool>();
                counts.rows_seen = row[4].as<std::size_t>();
            }, key.customer_id, stamp);
            batch.send();
            return counts.inserted == counts.rows_seen;
        }
        // Run on its own: its failure is undone with the savepoint.
        std::optional<pqxx::row> row;
        direct().exec0(sql::window_loader::before_insert_all_new);
        try {
            row = sql::exec1(direct(), sql::window_loader::insert_all_new, key.customer_id, stamp);
        } catch (const pqxx::unique_violation&) {
            direct().exec0(sql::window_loader::undo_insert_all_new);
            return false;
        }
        direct().exec0(sql::window_loader::after_insert_all_new);
        counts.rows_seen = (*row)[0].as<std::size_t>();
        counts.inserted = counts.rows_seen;
        note_change_range((*row)[1], (*row)[2]);
        changed_without_occurs_at = changed_without_occurs_at || (*row)[3].as<bool>();
        return true;
    }

    // The general path: new, changed and undeleted comebacks written, the
    // unchanged ones left as they are (see sql::window_loader::merge_comebacks).
    void merge_comebacks(const std::string& stamp) {
        batch.add_command(sql::window_loader::sort_set_operations.text());
        const auto& s = sql::window_loader::merge_comebacks;
        batch.add(s, [this, &s](const pqxx::result& rows) {
            const pqxx::row row = sql::single_row(rows, s);
            counts.rows_seen = row[0].as<std::size_t>();
            counts.inserted += row[1].as<std::size_t>();  // after insert_all_new's, if any
            counts.updated = row[2].as<std::size_t>();
            counts.undeleted = row[3].as<std::size_t>();
            note_change_range(row[4], row[5]);
            changed_without_occurs_at = changed_without_occurs_at || row[6].as<bool>();
        }, key.customer_id, stamp, sql_time::micros(key.from), sql_time::micros(key.to));
        batch.add_command(sql::window_loader::hash_set_operations.text());
    }

    // Soft-deletes what the response no longer holds, when the load deletes
    // at all (deletes()).
    void soft_delete(const std::string& stamp, const std::optional<instant>& previous_fetch) {
        if (!deletes()) return;
        batch.add(sql::window_loader::soft_delete, [this](const pqxx::result& rows) {
            counts.deleted = static_cast<std::size_t>(rows.affected_rows());
            if (counts.deleted > 0) widen_change_range(key.from, key.to);
        }, key.customer_id, stamp, sql_time::micros(key.from), sql_time::micros(key.to),
           previous_fetch ? std::optional<long long>(sql_time::micros(*previous_fetch)) : std::nullopt);
    }

    // The counts of the merge and the soft delete, which the ledger row
    // records: history went with them (a comebacks row holds its current
    // version, so an update or a delete moves the version it ends in the same
    // statement).
    void read_counts() { batch.send(); }

    // Other windows whose data this load changed, told so with the ledger
    // row. A renamed entity may be named by any window.
    std::optional<changed_windows> others_changed() const {
        const bool everything = renamed > 0 || changed_without_occurs_at;
        if (!everything && !changed_from) return std::nullopt;
        return changed_windows{everything, changed_from.value_or(key.from), changed_to.value_or(key.to)};
    }

    void store_rejections(const std::string& stamp) {
        if (counts.rejected == 0) return;
        const bool keep_raw = options.rejected_raw_retention.count() > 0;
        const auto& s = sql::window_loader::store_rejections;
        batch.add(s, sql::expect_no_rows(s), key.customer_id,
                  key.date_criteria.name(), sql_time::day_number(key.first_day),
                  sql_time::day_number(key.end_day), stamp, std::string(withheld_text), keep_raw);
    }

    // The load's stamp and its window's last load, read under the customer's
    // lock, where no other load of the customer commits: the fetch's ticket
    // is checked against the last load's here (load/fencing.hpp).
    // Sent with BEGIN and begin_load, unless a streamed load sent those.
    load_start read_start(std::string_view content, std::string_view response, load_start_options read) {
        load_start start;
        read_load_start(batch, key, content, response, read, start);
        batch.send();
        if (options.fetch_ticket) {
            check_fetch_ticket(key, *options.fetch_ticket, start.last.ticket);
        } else if (options.first_load_unticketed && start.last.fetched_at) {
            throw loaded_meanwhile(describe_window(key) +
                                   ": loaded since its turn read the ledger; fetched again with a ticket");
        }
        return start;
    }

    // The window is confirmed: its counts are those of the last load.
    void confirm(const last_load& last) {
        counts.rows_seen = last.rows_seen;
        counts.duplicates = last.rows_duplicate;
        counts.confirmed = true;
    }

    // The ledger row of a complete load, with its fetch ticket, and the commit.
    void finish(const std::string& stamp, const fetch_info& info, const std::string& content) {
        record_load(stamp, info, content);
        commit_batch();
    }

    // COMMIT with the last statements, in one message. A load that staged
    // more than a few pages' worth of rows empties staging first: the truncated
    // files go at commit, not whenever the session next stages, which may be
    // never (a connection that goes on confirming windows, or sits idle),
    // while a large window's rows would take the server's disk.
    void commit_batch() {
        if (static_cast<std::int64_t>(staged_bytes) > truncate_staging_above_bytes) {
            batch.add_command(sql::window_loader::truncate_staging.text());
        }
        batch.add_commit();
        batch.send();
        tx.commit();
        counts.round_trips = batch.messages_sent() + direct_runs;
    }

    void record_held(const std::string& stamp, const fetch_info& info, const std::string& content) {
        held_load load;
        load.http_status = info.http_status;
        load.content_digest = content;
        load.deletions = counts.held_deletions;
        load.live_rows = counts.held_live_rows;
        record_held_load(batch, key, stamp, load);
    }

    void record_load(const std::string& stamp, const fetch_info& info, const std::string& content) {
        complete_load load;
        load.http_status = info.http_status;
        load.response_bytes = info.bytes;
        load.fetch_duration = info.duration;
        load.load_duration = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        load.rows_seen = counts.rows_seen;
        load.rows_duplicate = counts.duplicates;
        load.rows_changed = counts.changed();
        load.rows_rejected = counts.rejected;
        load.content_digest = content;
        load.response_digest = info.response_digest;
        load.changed_data = counts.changed() > 0 || renamed > 0;
        load.compared = !counts.confirmed;
        load.ticket = options.fetch_ticket;
        load.ticket_from_counter = !options.fetch_ticket && options.first_load_unticketed;
        load.others_changed = others_changed();
        record_complete_load(batch, key, stamp, load);
    }
};

window_loader::window_loader(pqxx::connection& connection, std::string schema, window_key key,
                             load_options options) {
    check_schema_name(schema);
    check_window_key(key);
    if (options.commit_lazily && options.contacts) {
        throw std::logic_error("window_loader: a load that commits lazily cannot teach the contact memo");
    }
    // The batches prepare their statements before the batch that sets this
    // transaction's search_path runs, so the session's must name the schema
    // (a round trip the first time on a connection, none after).
    sql::use_schema_for_session(connection, schema);
    impl_ = std::make_unique<impl>(connection, std::move(schema), std::move(key), options);
    // Queued: it goes with BEGIN and the read of the window's last load.
    auto& loader = *impl_;
    const auto& s = sql::window_loader::begin_load;
    loader.batch.add(s, [&loader, &s](const pqxx::result& rows) {
        const pqxx::row begun = sql::single_row(rows, s);
        loader.staging_missing = begun["staging_missing"].as<bool>();
        loader.staging_large = begun["staging_large"].as<bool>();
    }, loader.schema, loader.key.customer_id, truncate_staging_above_bytes, options.commit_lazily);
}

window_loader::~window_loader() = default;

void window_loader::add(const normalized_batch& batch, std::span<const rejection> rejections) {
    if (impl_->finished) throw std::logic_error("window_loader::add after commit()");
    if (!batch.customer_id.empty() && batch.customer_id != impl_->key.customer_id) {
        throw std::invalid_argument("window_loader::add: a batch of customer " + batch.customer_id +
                                    " given to the loader of " + describe_window(impl_->key));
    }
    impl_->format(batch);
    impl_->format(rejections);
    if (impl_->held() >= hold_bytes) {
        impl_->stage_all();
    }
}

// Confirm or compare. A load is confirmed when the ledger says its window's
// last complete load saw exactly this content and nothing has changed the
// data it covers since: its comebacks' occurs_at range and the customer's
// entity names (changed_at, which every changing load moves). Then the stored
// rows are what comparing them would leave, and only entity last_seen_at
// could be due. Every window is still compared once a day (compared_at),
// which keeps that within two days and bounds how long a row changed by hand
// goes unrepaired.
load_counts window_loader::commit(const fetch_info& info) {
    if (impl_->finished) throw std::logic_error("window_loader::commit called twice");
    impl_->finished = true;
    auto& counts = impl_->counts;
    const std::string content = impl_->digest.finish();
    // A recheck takes the general path, which repairs rows changed by hand.
    // It needs no probe for live rows in range: without any, the merge's
    // EXCEPT and the soft delete find nothing, as they would have.
    const load_start start = impl_->read_start(content, info.response_digest,
                                               {.probe_live_rows = !impl_->options.recheck});
    const std::string& stamp = start.stamp;
    const last_load& last = start.last;
    if (last.confirms && !impl_->options.recheck) {
        impl_->confirm(last);
        // Staged rows, if the window was large enough to stream, go with the commit.
        impl_->stage_rejections();
    } else {
        impl_->stage_all();
        // With no live comeback stored in the window's occurs_at range (a
        // first load) there is nothing to drop as unchanged and nothing to
        // soft-delete.
        const bool live_in_range = start.live_rows_in_range.value_or(true);
        if (live_in_range && impl_->deletes() && impl_->hold_deletions(last)) {
            // Nothing of the window is written: its stored rows stay as the
            // last complete load left them, and the ledger says why.
            counts.rows_seen = impl_->staged;
            impl_->record_held(stamp, info, content);
            impl_->commit_batch();
            return counts;
        }
        impl_->merge_entities(stamp);
        if (live_in_range || !impl_->insert_all_new(stamp)) impl_->merge_comebacks(stamp);
        if (live_in_range) impl_->soft_delete(stamp, last.fetched_at);
        impl_->read_counts();
        counts.duplicates = impl_->staged - counts.rows_seen;
    }
    impl_->store_rejections(stamp);
    impl_->finish(stamp, info, content);
    // Committed: the memo learns what the merge wrote (a confirmed load
    // merged nothing), as of when the load began, before its transaction
    // and its stamp.
    if (impl_->memo && !counts.confirmed) impl_->memo->committed(impl_->started);
    return counts;
}

std::vector<confirmation> confirm_unparsed(pqxx::connection& connection, std::string_view schema,
                                           std::span<const unparsed_response> responses) {
    check_schema_name(schema);
    std::vector<confirmation> confirmations(responses.size());
    // Only responses with a digest are offered; `offered[i]` is the response
    // behind the statement's row i + 1.
    std::vector<std::size_t> offered;
    copy_text rows;
    for (std::size_t i = 0; i < responses.size(); ++i) {
        const unparsed_response& response = responses[i];
        check_window_key(response.key);
        if (response.info.response_digest.empty()) continue;
        for (const std::size_t earlier : offered) {
            if (responses[earlier].key.customer_id == response.key.customer_id) {
                throw std::logic_error("confirm_unparsed: two responses of customer " + response.key.customer_id +
                                       " in one batch");
            }
        }
        offered.push_back(i);
        rows.text(response.key.customer_id);
        rows.text(response.key.date_criteria.name());
        rows.number(sql_time::day_number(response.key.first_day));
        rows.number(sql_time::day_number(response.key.end_day));
        rows.number(sql_time::micros(response.key.from));
        rows.number(sql_time::micros(response.key.to));
        rows.text(response.info.response_digest);
        if (response.ticket) rows.number(*response.ticket);
        else rows.null();
        rows.number(response.info.http_status);
        rows.number(static_cast<long long>(response.info.bytes));
        rows.number(static_cast<long long>(response.info.duration.count()));
        rows.end_row();
    }
    if (offered.empty()) return confirmations;
    const std::vector<std::string> arrays = copy_text::array_literals(rows.view(), 11);
    sql::use_schema_for_session(connection, schema);
    pqxx::nontransaction tx{connection, "confirm windows"};
    const pqxx::result result =
        sql::exec(tx, sql::window_loader::confirm_unparsed, arrays[0], arrays[1], arrays[2], arrays[3], arrays[4],
                  arrays[5], arrays[6], arrays[7], arrays[8], arrays[9], arrays[10]);
    if (result.size() != offered.size()) {
        throw pqxx::unexpected_rows("confirm_unparsed returned " + std::to_string(result.size()) + " rows for " +
                                    std::to_string(offered.size()) + " responses");
    }
    for (std::size_t i = 0; i < offered.size(); ++i) {
        const pqxx::row row = result[static_cast<pqxx::result::size_type>(i)];
        const unparsed_response& response = responses[offered[i]];
        confirmation& out = confirmations[offered[i]];
        if (response.ticket && !row["fetch_ticket"].is_null()) {
            try {
                check_fetch_ticket(response.key, *response.ticket, row["fetch_ticket"].as<fetch_ticket>());
            } catch (...) {
                out.refused = std::current_exception();
                continue;
            }
        }
        if (row["rows_seen"].is_null()) continue;
        load_counts counts;
        counts.rows_seen = row["rows_seen"].as<std::size_t>();
        counts.duplicates = row["rows_duplicate"].as<std::size_t>();
        counts.rejected = row["rows_rejected"].as<std::size_t>();  // the statement makes NULL 0
        counts.unreadable_ids = row["unreadable"].as<std::size_t>();
        counts.confirmed = true;
        counts.unparsed = true;
        out.counts = counts;
    }
    return confirmations;
}

std::optional<load_counts> confirm_unparsed(pqxx::connection& connection, std::string_view schema,
                                            const window_key& key, const fetch_info& info,
                                            const load_options& options) {
    if (options.recheck) return std::nullopt;
    const unparsed_response response{key, info, options.fetch_ticket};
    confirmation result = std::move(confirm_unparsed(connection, schema, std::span(&response, 1)).front());
    if (result.refused) std::rethrow_exception(result.refused);
    return result.counts;
}

}  // namespace comeback
