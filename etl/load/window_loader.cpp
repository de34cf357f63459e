#include "load/window_loader.hpp"

#include "load/content_digest.hpp"
#include "load/identifier.hpp"
#include "load/sql_time.hpp"
#include "model/text.hpp"

#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <array>
#include <charconv>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace comeback {

namespace {

// The entity tables, in the order they are merged (before comebacks, whose
// *_id columns refer to them). Fixed names: nothing here comes from input.
// Contacts, one or more per window row, travel with their comebacks in
// load_comebacks; the few users, groups and offices in load_entities.
struct entity_table {
    const char* kind;
    const char* table;
    const char* id_column;
    const char* staged;  // the staged (entity_id, name, ord) rows; the highest ord wins
};
constexpr std::array<entity_table, 4> entity_tables{{
    {"contact", "contacts", "contact_id",
     "SELECT contact_id AS entity_id, contact_name AS name, idx AS ord"
     " FROM pg_temp.load_comebacks WHERE contact_id IS NOT NULL"},
    {"user", "users", "user_id",
     "SELECT entity_id, name, seq AS ord FROM pg_temp.load_entities WHERE kind = 'user'"},
    {"user_group", "user_groups", "group_id",
     "SELECT entity_id, name, seq AS ord FROM pg_temp.load_entities WHERE kind = 'user_group'"},
    {"office", "offices", "office_id",
     "SELECT entity_id, name, seq AS ord FROM pg_temp.load_entities WHERE kind = 'office'"},
}};

// The comeback columns a change is measured on; history keeps each version of them.
constexpr const char* tracked_columns =
    "contact_id, booked_by_user_id, assigned_user_id, assigned_group_id, assigned_office_id,"
    " state, origin, occurs_at, booked_at";

std::string prefixed_tracked_columns(const std::string& prefix) {
    std::string out;
    std::string_view all = tracked_columns;
    while (!all.empty()) {
        auto comma = all.find(',');
        auto column = all.substr(0, comma);
        while (!column.empty() && column.front() == ' ') column.remove_prefix(1);
        if (!out.empty()) out += ", ";
        out += prefix + std::string(column);
        if (comma == std::string_view::npos) break;
        all.remove_prefix(comma + 1);
    }
    return out;
}

// Staging tables live for the session and empty at every commit, so a
// connection loading many windows creates them once. A rolled-back
// transaction that created them takes them along; ensure_staging() runs at
// the start of every window. They have no statistics (autovacuum never
// analyzes temporary tables), so every statement below is written to be
// linear in the window's rows whatever the planner believes: lookups of
// stored rows are LATERAL primary-key probes, set differences are EXCEPT.
constexpr const char* create_staging =
    "CREATE TEMP TABLE load_comebacks ("
    " idx bigint NOT NULL, comeback_id text COLLATE \"C\" NOT NULL, contact_id text COLLATE \"C\","
    " booked_by_user_id text, assigned_user_id text, assigned_group_id text,"
    " assigned_office_id text, state text, origin text, occurs_at_us bigint, booked_at_us bigint,"
    " contact_name text)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE load_entities ("
    " seq bigint NOT NULL, kind text NOT NULL, entity_id text COLLATE \"C\" NOT NULL,"
    " name text NOT NULL)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE load_rejections ("
    " idx bigint NOT NULL, comeback_id text COLLATE \"C\", reason text NOT NULL, raw text NOT NULL)"
    " ON COMMIT DELETE ROWS;"
    // The window's updates, undeletes and deletes (not its inserts): their
    // current history versions are closed at commit.
    "CREATE TEMP TABLE load_delta ("
    " comeback_id text COLLATE \"C\" NOT NULL, change text NOT NULL, contact_id text,"
    " booked_by_user_id text,"
    " assigned_user_id text, assigned_group_id text, assigned_office_id text, state text,"
    " origin text, occurs_at timestamptz, booked_at timestamptz, is_deleted boolean NOT NULL)"
    " ON COMMIT DELETE ROWS;";

// The staged comebacks, one per id (the last index wins), with their instants
// as timestamptz: the CTE both merge statements start from. A macro so the
// statements stay compile-time string literals.
#define COMEBACK_LATEST_STAGED_COMEBACKS                                                      \
    "latest AS MATERIALIZED ("                                                                 \
    "  SELECT DISTINCT ON (comeback_id COLLATE \"C\") comeback_id, contact_id,"                \
    "   booked_by_user_id, assigned_user_id, assigned_group_id, assigned_office_id, state,"    \
    "   origin, " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("occurs_at_us") " AS occurs_at, "         \
    COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("booked_at_us") " AS booked_at"                         \
    "  FROM pg_temp.load_comebacks ORDER BY comeback_id COLLATE \"C\", idx DESC)"

const std::vector<std::string> comeback_columns{
    "idx", "comeback_id", "contact_id", "booked_by_user_id", "assigned_user_id",
    "assigned_group_id", "assigned_office_id", "state", "origin", "occurs_at_us",
    "booked_at_us", "contact_name"};
const std::vector<std::string> entity_columns{"seq", "kind", "entity_id", "name"};
const std::vector<std::string> rejection_columns{"idx", "comeback_id", "reason", "raw"};

// Rows in COPY's text format, appended to one buffer and escaped in place.
// pqxx::stream_to builds and escapes every field as its own std::string,
// which made it the loader's largest cost in comeback-sync's own profile.
class copy_text {
public:
    void text(std::string_view value) {
        separate();
        append_escaped(buffer_, value);
    }
    void text(const std::string& value) { text(std::string_view{value}); }
    void text(const std::optional<std::string>& value) {
        if (value) text(*value);
        else null();
    }
    void plain(const char* value) {  // a fixed string that needs no escaping
        separate();
        buffer_ += value;
    }
    void number(long long value) {
        separate();
        char digits[24];
        const auto result = std::to_chars(std::begin(digits), std::end(digits), value);
        buffer_.append(digits, result.ptr);
    }
    void micros(const std::optional<instant>& value) {
        if (value) number(sql_time::micros(*value));
        else null();
    }
    void null() {
        separate();
        buffer_ += "\\N";
    }
    void end_row() {
        buffer_ += '\n';
        first_ = true;
    }

    std::size_t size() const { return buffer_.size(); }
    bool empty() const { return buffer_.empty(); }
    std::string_view view() const { return buffer_; }
    void clear() { buffer_.clear(); }

    // COPY text escaping. PostgreSQL text cannot hold NUL, and JSON can
    // (\u0000): one would fail the whole window, so it becomes U+FFFD.
    static void append_escaped(std::string& out, std::string_view value) {
        for (char c : value) {
            switch (c) {
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                case '\b': out += "\\b"; break;
                case '\f': out += "\\f"; break;
                case '\v': out += "\\v"; break;
                case '\0': out += "\xEF\xBF\xBD"; break;
                default: out += c;
            }
        }
    }

private:
    void separate() {
        if (!first_) buffer_ += '\t';
        first_ = false;
    }

    std::string buffer_;
    bool first_ = true;
};

// One COPY ... FROM STDIN of preformatted rows, sent 64 KiB at a time (COPY
// data need not end at a row, but tablewriter's chunks must: it strips one
// trailing newline and adds its own). pqxx 6.4's only public way to send
// preformatted COPY data is tablewriter, deprecated in favour of stream_to,
// which cannot take it. The server reports bad data when the COPY ends.
void send_copy(pqxx::work& tx, const char* table, const std::vector<std::string>& columns,
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
        writer.write_raw_line(std::string(rows.substr(0, take)));
        rows.remove_prefix(take);
    }
    writer.complete();
}

// Id -> name of one batch's entities of one kind.
using name_index = std::unordered_map<std::string_view, std::string_view>;

name_index index_names(const std::vector<entity>& entities) {
    name_index names;
    names.reserve(entities.size());
    for (const auto& e : entities) names[e.id] = e.name;
    return names;
}

std::string window_description(const window_key& key) {
    return "customer " + key.customer_id + " " + key.date_criteria + " window " +
           date::format("%F", key.first_day) + ".." + date::format("%F", key.end_day);
}

// A load's content below this many formatted bytes is held in memory until
// commit, so a load that turns out to confirm its window's last one never
// stages it; a larger one is streamed into staging as it arrives (bounded
// memory), and still confirms without comparing rows when it can.
constexpr std::size_t hold_bytes = 4 * 1024 * 1024;

// Bumped whenever the loader's formatting or merge rules change what a load
// writes for the same response, so no window confirms across such a change.
constexpr std::string_view digest_version = "comeback-sync load content 1\n";

}  // namespace

struct window_loader::impl {
    impl(pqxx::connection& connection, std::string schema_name, window_key window,
         load_options load_options)
        : schema(std::move(schema_name)),
          quoted(quoted_schema(schema)),
          key(std::move(window)),
          options(load_options),
          started(std::chrono::steady_clock::now()),
          tx(connection, "load window") {
        digest.add(digest_version);
    }

    std::string schema;
    std::string quoted;
    window_key key;
    load_options options;
    std::chrono::steady_clock::time_point started;
    pqxx::work tx;
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
    // Scratch: per comeback of a batch, the names of its contact, booked-by
    // user, assigned user, group and office (empty when it has none).
    std::vector<std::array<std::string_view, 5>> resolved_names;

    // What changed stored data in this load, for the ledger's changed_at.
    std::size_t renamed = 0;  // stored entities that took a new name
    std::optional<instant> changed_from, changed_to;  // occurs_at range of changed rows
    bool changed_without_occurs_at = false;

    void ensure_staging() {
        auto row = tx.exec1("SELECT to_regclass('pg_temp.load_comebacks') IS NULL");
        if (row[0].as<bool>()) tx.exec0(create_staging);
    }

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
        auto name_of = [&](const comeback_record& c, const std::optional<std::string>& id,
                           const name_index& known, const char* what) -> std::string_view {
            if (!id) return {};
            auto found = known.find(*id);
            if (found == known.end()) {
                throw std::logic_error("window_loader::add: comeback " + c.id + " of customer " +
                                       batch.customer_id + " refers to " + what + " " + *id +
                                       ", which the batch does not carry");
            }
            return found->second;
        };
        // Resolve everything first: a refused batch formats nothing.
        resolved_names.clear();
        resolved_names.reserve(batch.comebacks.size());
        for (const auto& c : batch.comebacks) {
            resolved_names.push_back({name_of(c, c.contact_id, contacts, "contact"),
                                      name_of(c, c.booked_by_user_id, users, "user"),
                                      name_of(c, c.assigned_user_id, users, "user"),
                                      name_of(c, c.assigned_group_id, groups, "user group"),
                                      name_of(c, c.assigned_office_id, offices, "office")});
        }

        // The digest takes each comeback row with the names it refers to, so it
        // does not depend on how the response was cut into batches.
        for (std::size_t i = 0; i < batch.comebacks.size(); ++i) {
            const comeback_record& c = batch.comebacks[i];
            const auto& [contact_name, booked_by_name, assigned_user_name, group_name,
                         office_name] = resolved_names[i];
            const std::size_t row_start = comebacks.size();
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
            if (c.contact_id) comebacks.text(contact_name);
            else comebacks.null();
            comebacks.end_row();
            digest.add(comebacks.view().substr(row_start));
            digest_tail.clear();
            for (auto name : {booked_by_name, assigned_user_name, group_name, office_name}) {
                copy_text::append_escaped(digest_tail, name);
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
                entities.plain(entity_tables[i + 1].kind);
                entities.text(e.id);
                entities.text(e.name);
                entities.end_row();
            }
        }
    }

    void format(std::span<const rejection> batch) {
        for (const auto& r : batch) {
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

    void stage_rejections() {
        send_copy(tx, "load_rejections", rejection_columns, rejections.view());
        rejections.clear();
    }

    void stage_all() {
        send_copy(tx, "load_comebacks", comeback_columns, comebacks.view());
        comebacks.clear();
        send_copy(tx, "load_entities", entity_columns, entities.view());
        entities.clear();
        stage_rejections();
    }

    std::size_t held() const { return comebacks.size() + entities.size() + rejections.size(); }

    // The window's last complete load saw exactly this content, and nothing
    // has changed the data it covers since: its comebacks' occurs_at range
    // and the customer's entity names (changed_at, which every changing load
    // moves). Then the stored rows are what comparing them would leave, and
    // only entity last_seen_at could be due. Every window is still compared
    // once a day (compared_at), which keeps that within two days and bounds
    // how long a row changed by hand goes unrepaired. Fills the counts this
    // load reports.
    bool confirms_last_load(const std::string& stamp, const std::string& content) {
        if (options.recheck) return false;
        auto result = tx.exec_params(
            "SELECT rows_seen, rows_duplicate FROM sync_windows"
            " WHERE customer_id = $1 AND date_criteria = $2"
            "   AND first_day = " COMEBACK_SQL_DAYS_TO_DATE("$3") " AND end_day = "
            COMEBACK_SQL_DAYS_TO_DATE("$4")
            "   AND content_digest = $5 AND compared_at > $6::timestamptz - interval '1 day'"
            "   AND (changed_at IS NULL OR changed_at <= fetched_at)"
            "   AND rows_seen IS NOT NULL AND rows_duplicate IS NOT NULL",
            key.customer_id, key.date_criteria, sql_time::day_number(key.first_day),
            sql_time::day_number(key.end_day), content, stamp);
        if (result.empty()) return false;
        counts.rows_seen = result[0][0].as<std::size_t>();
        counts.duplicates = result[0][1].as<std::size_t>();
        counts.confirmed = true;
        return true;
    }

    void widen_change_range(instant low, instant high) {
        if (!changed_from || low < *changed_from) changed_from = low;
        if (!changed_to || high > *changed_to) changed_to = high;
    }

    void note_change_range(const pqxx::field& from, const pqxx::field& to) {
        if (from.is_null() || to.is_null()) return;
        widen_change_range(sql_time::from_micros(from.as<long long>()),
                           sql_time::from_micros(to.as<long long>()));
    }

    // Entities first: comebacks reference them. Rows that would not change
    // are filtered out before writing. Each staged entity looks its stored
    // row up by primary key (see merge_comebacks()); new ones are plain
    // inserts (under the customer's lock nobody else adds them), stored ones
    // due for a new name or last_seen_at go through ON CONFLICT DO UPDATE,
    // whose conflict check is the row lookup.
    void merge_entities(const std::string& stamp) {
        for (const auto& t : entity_tables) {
            const std::string table = t.table;
            const std::string id = t.id_column;
            auto row = tx.exec_params1(
                "WITH s AS ("
                "  SELECT DISTINCT ON (entity_id COLLATE \"C\") entity_id, name"
                "  FROM (" + std::string(t.staged) + ") staged"
                "  ORDER BY entity_id COLLATE \"C\", ord DESC),"
                " due AS MATERIALIZED ("
                "  SELECT s.entity_id, s.name, e." + id + " IS NOT NULL AS stored,"
                "   e." + id + " IS NOT NULL AND e.name IS DISTINCT FROM s.name AS renamed"
                "  FROM s LEFT JOIN LATERAL (SELECT e." + id + ", e.name, e.last_seen_at FROM " +
                    table + " e WHERE e.customer_id = $1 AND e." + id +
                    " = s.entity_id LIMIT 1) e ON true"
                "  WHERE e." + id + " IS NULL OR e.name IS DISTINCT FROM s.name"
                "     OR e.last_seen_at < $2::timestamptz - interval '1 day'),"
                " added AS ("
                "  INSERT INTO " + table + " (customer_id, " + id + ", name, first_seen_at, last_seen_at)"
                "  SELECT $1, entity_id, name, $2::timestamptz, $2::timestamptz FROM due"
                "  WHERE NOT stored),"
                " refreshed AS ("
                "  INSERT INTO " + table + " AS t (customer_id, " + id +
                    ", name, first_seen_at, last_seen_at)"
                "  SELECT $1, entity_id, name, $2::timestamptz, $2::timestamptz FROM due WHERE stored"
                "  ON CONFLICT (customer_id, " + id + ") DO UPDATE"
                "  SET name = excluded.name, last_seen_at = excluded.last_seen_at)"
                " SELECT count(*) FILTER (WHERE renamed) FROM due",
                key.customer_id, stamp);
            renamed += row[0].as<std::size_t>();
        }
    }

    // Whether any live comeback is stored in the window's occurs_at range:
    // when none is (a first load), there is nothing to drop as unchanged and
    // nothing to soft-delete, so both steps are left out.
    bool live_rows_in_range() {
        return tx.exec_params1(
                   "SELECT EXISTS (SELECT FROM comebacks WHERE customer_id = $1 AND deleted_at IS NULL"
                   "  AND occurs_at >= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$2")
                   "  AND occurs_at <= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$3") ")",
                   key.customer_id, sql_time::micros(key.from), sql_time::micros(key.to))[0]
            .as<bool>();
    }

    // A window with no live stored rows in its range (a first load) most
    // likely holds only comebacks the database has never seen. They are
    // inserted with their first history version without looking each one up
    // first: the primary key's own uniqueness check is the lookup. Should one
    // exist after all (rescheduled from another window, or deleted), the
    // insert fails, its savepoint is rolled back, and merge_comebacks() does
    // it the general way. Returns whether the insert went through.
    bool insert_all_new(const std::string& stamp) {
        const std::string columns = tracked_columns;
        // Literals rather than parameters: in libpqxx 6.4 a failed
        // parameterized statement leaves a subtransaction unable to roll back.
        const std::string customer = tx.quote(key.customer_id);
        const std::string at = tx.quote(stamp) + "::timestamptz";
        std::optional<pqxx::row> row;
        try {
            pqxx::subtransaction attempt{tx, "insert all new"};
            row = attempt.exec1(
                "WITH " COMEBACK_LATEST_STAGED_COMEBACKS ","
                " added AS ("
                "  INSERT INTO comebacks (customer_id, comeback_id, " + columns +
                    ", first_seen_at, last_seen_at, deleted_at)"
                "  SELECT " + customer + ", comeback_id, " + columns + ", " + at + ", " + at + ", NULL"
                "  FROM latest),"
                " opened AS ("
                "  INSERT INTO comeback_history (customer_id, comeback_id, valid_from, valid_to, change, " +
                    columns + ", is_deleted)"
                "  SELECT " + customer + ", comeback_id, " + at + ", NULL, 'insert', " + columns + ", false"
                "  FROM latest)"
                " SELECT count(*), " COMEBACK_SQL_TIMESTAMPTZ_TO_MICROS("min(occurs_at)") ", "
                COMEBACK_SQL_TIMESTAMPTZ_TO_MICROS("max(occurs_at)") ","
                "  coalesce(bool_or(occurs_at IS NULL), false)"
                " FROM latest");
            attempt.commit();
        } catch (const pqxx::unique_violation&) {
            return false;  // `attempt` rolled back to its savepoint on the way out
        }
        counts.rows_seen = (*row)[0].as<std::size_t>();
        counts.inserted = counts.rows_seen;
        note_change_range((*row)[1], (*row)[2]);
        changed_without_occurs_at = changed_without_occurs_at || (*row)[3].as<bool>();
        return true;
    }

    // Dedupes the window, diffs it against the stored rows, upserts what
    // differs and opens the first history version of every new comeback, in
    // one statement. Plans start from the window's staged rows: each stored
    // row is reached through the primary key (a LATERAL lookup the planner
    // cannot turn into a scan of the customer's rows, whatever statistics it
    // holds: the staging tables have none and the main tables may still hold
    // those of their empty state during a bulk load), so a window costs what
    // its own rows cost, however many the customer has.
    //
    // Each new comeback is written once to comebacks and once to history;
    // only updates and undeletes also go to load_delta, to close their
    // current history version first (write_history()).
    void merge_comebacks(const std::string& stamp, bool live_in_range) {
        const std::string s_cols = prefixed_tracked_columns("s.");
        const std::string c_cols = prefixed_tracked_columns("c.");
        const std::string t_cols = prefixed_tracked_columns("t.");
        const std::string x_cols = prefixed_tracked_columns("excluded.");
        const std::string d_cols = prefixed_tracked_columns("d.");
        const std::string columns = tracked_columns;

        // Last index wins within the window. `latest` and `delta` stay CTEs
        // (in-memory tuplestores) rather than more staging tables: writing
        // them costs more than reading them. Sorting ids byte-wise (COLLATE
        // "C") is twice as fast as in the database's locale and groups them
        // the same. Data-modifying CTEs share the statement's snapshot, so
        // `delta` compares with the rows as they were before this window.
        // The EXCEPT is sorted, not hashed: a hashed set operation cannot
        // spill to disk, so a window of a million rows would hold them all in
        // the server's memory; sorted, it stays within work_mem, costs about
        // as much for a usual window, and hands the rows on in key order, so
        // the inserts reach the indexes in that order.
        tx.exec0("SET LOCAL enable_hashagg = off");
        const std::string sql =
            "WITH " COMEBACK_LATEST_STAGED_COMEBACKS ","
            // Rows identical to a stored live row of the window's time range
            // need no lookup: one index range scan and an EXCEPT (NULLs
            // compare equal, like IS NOT DISTINCT FROM) drop them, so a
            // re-fetch of unchanged data looks nothing up. Any subset of the
            // stored rows is correct here; for criteria other than Occurrence
            // the range merely finds fewer of them.
            " candidates AS ("
            "  SELECT comeback_id, " + columns + " FROM latest" +
            (live_in_range ? "  EXCEPT SELECT comeback_id, " + columns + " FROM comebacks"
                             "  WHERE customer_id = $1 AND deleted_at IS NULL"
                             "    AND occurs_at >= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$3")
                             "    AND occurs_at <= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$4")
                           : std::string()) +
            "),"
            // What is left is new, changed, undeleted or moved in time: decided
            // once against the current row, found by primary key.
            " delta AS MATERIALIZED ("
            "  SELECT s.comeback_id,"
            "   CASE WHEN c.comeback_id IS NULL THEN 'insert'"
            "        WHEN c.deleted_at IS NOT NULL THEN 'undelete' ELSE 'update' END AS change, " +
                s_cols + ", c.occurs_at AS stored_occurs_at"
                "  FROM candidates s"
                "  LEFT JOIN LATERAL (SELECT c.comeback_id, c.deleted_at, " + c_cols +
                "   FROM comebacks c WHERE c.customer_id = $1 AND c.comeback_id = s.comeback_id"
                // LIMIT keeps the lookup a per-row index probe (never flattened into a join).
                "   LIMIT 1) c ON true"
                "  WHERE c.comeback_id IS NULL OR c.deleted_at IS NOT NULL"
                "     OR (" + c_cols + ") IS DISTINCT FROM (" + s_cols + ")),"
                // New rows are plain inserts: under the customer's lock nobody
                // else adds them, and ON CONFLICT would probe the key again.
                " added AS ("
                "  INSERT INTO comebacks (customer_id, comeback_id, " + columns +
                ", first_seen_at, last_seen_at, deleted_at)"
                "  SELECT $1, d.comeback_id, " + d_cols + ", $2::timestamptz, $2::timestamptz, NULL"
                "  FROM delta d WHERE d.change = 'insert'),"
                " merged AS ("
                "  INSERT INTO comebacks AS t (customer_id, comeback_id, " + columns +
                ", first_seen_at, last_seen_at, deleted_at)"
                "  SELECT $1, d.comeback_id, " + d_cols + ", $2::timestamptz, $2::timestamptz, NULL"
                "  FROM delta d WHERE d.change <> 'insert'"
                "  ON CONFLICT (customer_id, comeback_id) DO UPDATE SET (" + columns +
                ", last_seen_at, deleted_at) = (" + x_cols + ", excluded.last_seen_at, NULL)"
                "  WHERE t.deleted_at IS NOT NULL OR (" + t_cols + ") IS DISTINCT FROM (" + x_cols + ")),"
                // A new comeback has no history yet: nothing to close.
                " opened AS ("
                "  INSERT INTO comeback_history (customer_id, comeback_id, valid_from, valid_to, change, " +
                columns + ", is_deleted)"
                "  SELECT $1, d.comeback_id, $2::timestamptz, NULL, 'insert', " + d_cols + ", false"
                "  FROM delta d WHERE d.change = 'insert'),"
                " changed AS ("
                "  INSERT INTO pg_temp.load_delta (comeback_id, change, " + columns + ", is_deleted)"
                "  SELECT d.comeback_id, d.change, " + d_cols + ", false FROM delta d"
                // A recheck also lists its inserts: one whose stored row was
                // deleted by hand may still have an open history version.
                + std::string(options.recheck ? ")" : "  WHERE d.change <> 'insert')") +
                // The occurs_at range the changes touched, old and new values,
                // for the ledger's changed_at; and whether a change had none.
                " SELECT (SELECT count(*) FROM latest),"
                "  count(*) FILTER (WHERE change = 'insert'),"
                "  count(*) FILTER (WHERE change = 'update'),"
                "  count(*) FILTER (WHERE change = 'undelete'),"
                "  " COMEBACK_SQL_TIMESTAMPTZ_TO_MICROS("min(least(occurs_at, stored_occurs_at))") ","
                "  " COMEBACK_SQL_TIMESTAMPTZ_TO_MICROS("max(greatest(occurs_at, stored_occurs_at))") ","
                "  coalesce(bool_or(occurs_at IS NULL"
                "   OR (change <> 'insert' AND stored_occurs_at IS NULL)), false)"
                " FROM delta";
        const pqxx::row row =
            live_in_range ? tx.exec_params1(sql, key.customer_id, stamp, sql_time::micros(key.from),
                                            sql_time::micros(key.to))
                          : tx.exec_params1(sql, key.customer_id, stamp);
        tx.exec0("RESET enable_hashagg");
        counts.rows_seen = row[0].as<std::size_t>();
        counts.inserted = row[1].as<std::size_t>();
        counts.updated = row[2].as<std::size_t>();
        counts.undeleted = row[3].as<std::size_t>();
        note_change_range(row[4], row[5]);
        changed_without_occurs_at = changed_without_occurs_at || row[6].as<bool>();
    }

    // Only a window filtered on occurs_at says which comebacks of that time
    // range exist. For any other criteria the loader cannot tell which stored
    // rows the response should have held, so it deletes nothing. The stored
    // side is an index range scan of the window's time range and the
    // comparison a hashed EXCEPT, linear whatever the planner believes (NOT
    // EXISTS became a nested loop scanning the staged window per stored row).
    void soft_delete(const std::string& stamp) {
        if (key.date_criteria != "Occurrence") return;
        const std::string c_cols = prefixed_tracked_columns("c.");
        auto result = tx.exec_params(
            "WITH previous AS ("
            "  SELECT fetched_at FROM sync_windows"
            "  WHERE customer_id = $1 AND date_criteria = $5"
            "    AND first_day = " COMEBACK_SQL_DAYS_TO_DATE("$6") " AND end_day = "
            COMEBACK_SQL_DAYS_TO_DATE("$7") "),"
            " missing AS ("
            "  SELECT comeback_id FROM comebacks"
            "  WHERE customer_id = $1 AND deleted_at IS NULL"
            "    AND occurs_at >= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$3")
            "    AND occurs_at <= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$4")
            "  EXCEPT SELECT comeback_id FROM pg_temp.load_comebacks"
            // A rejected element with a readable id is in the response, only
            // unreadable: its stored version stays as it is.
            "  EXCEPT SELECT comeback_id FROM pg_temp.load_rejections WHERE comeback_id IS NOT NULL),"
            " gone AS ("
            "  UPDATE comebacks c SET deleted_at = $2::timestamptz,"
            "   last_seen_at = greatest(c.last_seen_at, (SELECT fetched_at FROM previous))"
            "  FROM missing m WHERE c.customer_id = $1 AND c.comeback_id = m.comeback_id"
            "  RETURNING c.comeback_id, " + c_cols + ")"
            " INSERT INTO pg_temp.load_delta (comeback_id, change, " + std::string(tracked_columns) +
                ", is_deleted)"
                " SELECT comeback_id, 'delete', " + std::string(tracked_columns) + ", true FROM gone",
            key.customer_id, stamp, sql_time::micros(key.from), sql_time::micros(key.to),
            key.date_criteria, sql_time::day_number(key.first_day),
            sql_time::day_number(key.end_day));
        counts.deleted = static_cast<std::size_t>(result.affected_rows());
        if (counts.deleted > 0) widen_change_range(key.from, key.to);
    }

    // Updates, undeletes and deletes (load_delta) close the comeback's current
    // version, then open a new one. Most windows have none: a first load only
    // inserts (merge_comebacks() wrote those versions), a re-run of unchanged
    // data changes nothing, so the statements are skipped. The close finds the
    // current version through the primary key's (customer_id, comeback_id)
    // prefix: a comeback has a handful of versions.
    void write_history(const std::string& stamp) {
        const bool inserts_listed = options.recheck && counts.inserted > 0;
        if (counts.updated + counts.undeleted + counts.deleted == 0 && !inserts_listed) return;
        tx.exec_params0(
            "UPDATE comeback_history h SET valid_to = $2::timestamptz"
            " WHERE h.customer_id = $1 AND h.valid_to IS NULL AND h.valid_from < $2::timestamptz"
            "   AND h.comeback_id = ANY (ARRAY(SELECT comeback_id FROM pg_temp.load_delta))",
            key.customer_id, stamp);
        // Inserts opened their first version in merge_comebacks().
        tx.exec_params0(
            "INSERT INTO comeback_history (customer_id, comeback_id, valid_from, valid_to, change, " +
                std::string(tracked_columns) + ", is_deleted)"
                " SELECT $1, d.comeback_id, $2::timestamptz, NULL, d.change, " +
                prefixed_tracked_columns("d.") + ", d.is_deleted FROM pg_temp.load_delta d"
                " WHERE d.change <> 'insert'",
            key.customer_id, stamp);
    }

    // Tells every other window of the customer whose data this load changed
    // that its last load no longer describes the database (changed_at), so
    // none of them confirms its next load without comparing rows. A renamed
    // entity may be named by any window; a window with other criteria than
    // Occurrence covers no occurs_at range the loader can check.
    void mark_changed_windows(const std::string& stamp) {
        const bool everything = renamed > 0 || changed_without_occurs_at;
        if (!everything && !changed_from) return;
        tx.exec_params0(
            "UPDATE sync_windows SET changed_at = $2::timestamptz"
            " WHERE customer_id = $1"
            "   AND NOT (date_criteria = $3 AND first_day = " COMEBACK_SQL_DAYS_TO_DATE("$4")
            "            AND end_day = " COMEBACK_SQL_DAYS_TO_DATE("$5") ")"
            "   AND ($6 OR date_criteria <> 'Occurrence'"
            "        OR (window_from <= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$8")
            "            AND window_to >= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$7") "))",
            key.customer_id, stamp, key.date_criteria, sql_time::day_number(key.first_day),
            sql_time::day_number(key.end_day), everything,
            sql_time::micros(changed_from.value_or(key.from)),
            sql_time::micros(changed_to.value_or(key.to)));
    }

    void store_rejections(const std::string& stamp) {
        if (counts.rejected == 0) return;
        tx.exec_params0(
            "INSERT INTO rejected_rows AS r (customer_id, date_criteria, first_day, end_day, raw_md5,"
            "  comeback_id, reason, raw, first_seen_at, last_seen_at, times_seen)"
            " SELECT DISTINCT ON (md5(raw)) $1, $2, " COMEBACK_SQL_DAYS_TO_DATE("$3") ", "
            COMEBACK_SQL_DAYS_TO_DATE("$4") ", md5(raw), comeback_id, reason, raw,"
            "  $5::timestamptz, $5::timestamptz, 1"
            " FROM pg_temp.load_rejections ORDER BY md5(raw), idx DESC"
            " ON CONFLICT (customer_id, date_criteria, first_day, end_day, raw_md5) DO UPDATE"
            " SET last_seen_at = excluded.last_seen_at, reason = excluded.reason,"
            "     comeback_id = excluded.comeback_id, times_seen = r.times_seen + 1",
            key.customer_id, key.date_criteria, sql_time::day_number(key.first_day),
            sql_time::day_number(key.end_day), stamp);
    }

    void update_ledger(const std::string& stamp, const fetch_info& info, const std::string& content) {
        const auto load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - started)
                                 .count();
        const bool changed = counts.changed() > 0 || renamed > 0;
        tx.exec_params0(
            "INSERT INTO sync_windows AS w (customer_id, date_criteria, first_day, end_day,"
            "  window_from, window_to, status, attempts, rows_seen, rows_duplicate, rows_changed,"
            "  rows_rejected, last_http_status, last_error, response_bytes, fetch_ms, load_ms,"
            "  fetched_at, attempted_at, content_digest, changed_at, compared_at)"
            " VALUES ($1, $2, " COMEBACK_SQL_DAYS_TO_DATE("$3") ", " COMEBACK_SQL_DAYS_TO_DATE("$4")
            ", " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$5") ", " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$6")
            ", 'complete', 1, $7, $8, $9, $10, $11, NULL, $12, $13, $14,"
            "  $15::timestamptz, $15::timestamptz, $16,"
            "  CASE WHEN $17 THEN $15::timestamptz END,"
            "  CASE WHEN NOT $18 THEN $15::timestamptz END)"
            " ON CONFLICT (customer_id, date_criteria, first_day, end_day) DO UPDATE SET"
            "  window_from = excluded.window_from, window_to = excluded.window_to,"
            "  status = 'complete', attempts = w.attempts + 1, rows_seen = excluded.rows_seen,"
            "  rows_duplicate = excluded.rows_duplicate, rows_changed = excluded.rows_changed,"
            "  rows_rejected = excluded.rows_rejected, last_http_status = excluded.last_http_status,"
            "  last_error = NULL, response_bytes = excluded.response_bytes,"
            "  fetch_ms = excluded.fetch_ms, load_ms = excluded.load_ms,"
            "  fetched_at = excluded.fetched_at, attempted_at = excluded.attempted_at,"
            "  content_digest = excluded.content_digest,"
            "  changed_at = CASE WHEN $17 THEN excluded.fetched_at ELSE w.changed_at END,"
            "  compared_at = CASE WHEN $18 THEN w.compared_at ELSE excluded.fetched_at END",
            key.customer_id, key.date_criteria, sql_time::day_number(key.first_day),
            sql_time::day_number(key.end_day), sql_time::micros(key.from), sql_time::micros(key.to),
            static_cast<long long>(counts.rows_seen), static_cast<long long>(counts.duplicates),
            static_cast<long long>(counts.changed()), static_cast<long long>(counts.rejected),
            info.http_status, static_cast<long long>(info.bytes),
            static_cast<long long>(info.duration.count()), static_cast<long long>(load_ms), stamp,
            content, changed, counts.confirmed);
    }
};

namespace {

void check_key(const window_key& key) {
    if (key.customer_id.empty()) throw std::invalid_argument("window_loader: empty customer id");
    if (key.date_criteria.empty()) {
        throw std::invalid_argument("window_loader: empty date criteria for customer " +
                                    key.customer_id);
    }
    if (key.end_day <= key.first_day || key.to <= key.from) {
        throw std::invalid_argument("window_loader: " + window_description(key) +
                                    " ends before it starts");
    }
}

}  // namespace

window_loader::window_loader(pqxx::connection& connection, std::string schema, window_key key,
                             load_options options) {
    check_key(key);
    impl_ = std::make_unique<impl>(connection, std::move(schema), std::move(key), options);
    auto& tx = impl_->tx;
    // Unqualified names below are the configured schema's tables; the staging
    // tables are named pg_temp.* explicitly.
    tx.exec0("SET LOCAL search_path TO " + impl_->quoted);
    // The daemon and a backfill may load the same customer at once: they take
    // turns per window instead of deadlocking on each other's rows. The key is
    // (schema, customer) in the loader's own space of advisory locks.
    tx.exec_params1(
        "SELECT pg_advisory_xact_lock(hashtext('comeback-sync/load/' || $1), hashtext($2))",
        impl_->schema, impl_->key.customer_id);
    impl_->ensure_staging();
}

window_loader::~window_loader() = default;

void window_loader::add(const normalized_batch& batch, std::span<const rejection> rejections) {
    if (impl_->finished) throw std::logic_error("window_loader::add after commit()");
    if (!batch.customer_id.empty() && batch.customer_id != impl_->key.customer_id) {
        throw std::invalid_argument("window_loader::add: a batch of customer " + batch.customer_id +
                                    " given to the loader of " + window_description(impl_->key));
    }
    impl_->format(batch);
    impl_->format(rejections);
    if (impl_->held() >= hold_bytes) impl_->stage_all();
}

load_counts window_loader::commit(const fetch_info& info) {
    if (impl_->finished) throw std::logic_error("window_loader::commit called twice");
    impl_->finished = true;
    auto& tx = impl_->tx;
    // One instant for every row this window writes. Read after the customer
    // lock was granted, so it is later than the stamp of any load that
    // committed before: history versions of a comeback stay in order.
    const auto stamp = tx.exec1("SELECT clock_timestamp()::text")[0].as<std::string>();
    const std::string content = impl_->digest.finish();
    if (impl_->confirms_last_load(stamp, content)) {
        // Staged rows, if the window was large enough to stream, go with the commit.
        impl_->stage_rejections();
    } else {
        impl_->stage_all();
        impl_->merge_entities(stamp);
        const bool live_in_range = impl_->live_rows_in_range();
        // A recheck takes the general path, which repairs history too.
        if (live_in_range || impl_->options.recheck || !impl_->insert_all_new(stamp)) {
            impl_->merge_comebacks(stamp, live_in_range);
        }
        if (live_in_range) impl_->soft_delete(stamp);
        impl_->write_history(stamp);
        impl_->mark_changed_windows(stamp);
        impl_->counts.duplicates = impl_->staged - impl_->counts.rows_seen;
    }
    impl_->store_rejections(stamp);
    impl_->update_ledger(stamp, info, content);
    tx.commit();
    return impl_->counts;
}

void record_window_failure(pqxx::connection& connection, std::string_view schema,
                           const window_key& key, int http_status, std::string_view error) {
    const std::string quoted = quoted_schema(schema);
    check_key(key);
    pqxx::work tx{connection, "record window failure"};
    tx.exec_params0(
        "INSERT INTO " + quoted + ".sync_windows AS w (customer_id, date_criteria, first_day,"
        "  end_day, window_from, window_to, status, attempts, last_http_status, last_error,"
        "  attempted_at)"
        " VALUES ($1, $2, " COMEBACK_SQL_DAYS_TO_DATE("$3") ", " COMEBACK_SQL_DAYS_TO_DATE("$4")
        ", " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$5") ", " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$6")
        ", 'failed', 1, nullif($7, 0), $8, clock_timestamp())"
        " ON CONFLICT (customer_id, date_criteria, first_day, end_day) DO UPDATE SET"
        "  status = 'failed', attempts = w.attempts + 1,"
        "  last_http_status = excluded.last_http_status, last_error = excluded.last_error,"
        "  attempted_at = excluded.attempted_at",
        key.customer_id, key.date_criteria, sql_time::day_number(key.first_day),
        sql_time::day_number(key.end_day), sql_time::micros(key.from), sql_time::micros(key.to),
        http_status, to_storable_text(cut_at_char_boundary(error, 2000)));
    tx.commit();
}

}  // namespace comeback
