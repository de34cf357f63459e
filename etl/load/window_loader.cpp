#include "load/window_loader.hpp"

#include "load/identifier.hpp"
#include "load/sql_time.hpp"
#include "model/text.hpp"

#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace comeback {

namespace {

// The entity tables, in the order they are merged (before comebacks, whose
// *_id columns refer to them). Fixed names: nothing here comes from input.
struct entity_table {
    const char* kind;
    const char* table;
    const char* id_column;
};
constexpr std::array<entity_table, 4> entity_tables{{
    {"contact", "contacts", "contact_id"},
    {"user", "users", "user_id"},
    {"user_group", "user_groups", "group_id"},
    {"office", "offices", "office_id"},
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
    " idx bigint NOT NULL, comeback_id text COLLATE \"C\" NOT NULL, contact_id text,"
    " booked_by_user_id text, assigned_user_id text, assigned_group_id text,"
    " assigned_office_id text, state text, origin text, occurs_at_us bigint, booked_at_us bigint)"
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

// PostgreSQL text cannot hold NUL, and JSON can (\u0000): one would fail the
// whole window, so it becomes U+FFFD. Returns `text` itself when clean.
const std::string& without_nul(const std::string& text, std::string& scratch) {
    if (std::memchr(text.data(), '\0', text.size()) == nullptr) return text;
    scratch.clear();
    for (char c : text) {
        if (c == '\0') scratch += "\xEF\xBF\xBD";
        else scratch += c;
    }
    return scratch;
}

// One COPY ... FROM STDIN into a staging table, in COPY's text format.
// pqxx::stream_to builds and escapes every field as its own std::string,
// which made it the loader's largest cost in comeback-sync's own profile;
// here each row is appended to one buffer, escaped in place, and the buffer
// goes to the server 64 KiB at a time (COPY data need not end at a row).
// pqxx 6.4's only public way to send preformatted COPY data is tablewriter,
// deprecated in favour of stream_to, which cannot take it.
class copy_writer {
public:
    copy_writer(pqxx::work& tx, const char* table, const std::vector<std::string>& columns)
        : writer_(make_writer(tx, table, columns)) {
        buffer_.reserve(flush_at + 4096);
    }
    copy_writer(const copy_writer&) = delete;
    copy_writer& operator=(const copy_writer&) = delete;

    void text(const std::string& value) {
        separate();
        const std::string& clean = without_nul(value, scratch_);
        for (char c : clean) {
            switch (c) {
                case '\\': buffer_ += "\\\\"; break;
                case '\n': buffer_ += "\\n"; break;
                case '\r': buffer_ += "\\r"; break;
                case '\t': buffer_ += "\\t"; break;
                case '\b': buffer_ += "\\b"; break;
                case '\f': buffer_ += "\\f"; break;
                case '\v': buffer_ += "\\v"; break;
                default: buffer_ += c;
            }
        }
    }
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
        const int n = std::snprintf(digits, sizeof digits, "%lld", value);
        buffer_.append(digits, static_cast<std::size_t>(n));
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
        if (buffer_.size() >= flush_at) flush();
    }
    // Sends what is left and ends the COPY; the server reports bad data here.
    void complete() {
        flush();
        writer_->complete();
    }

private:
    static constexpr std::size_t flush_at = 64 * 1024;

    static std::unique_ptr<pqxx::tablewriter> make_writer(pqxx::work& tx, const char* table,
                                                          const std::vector<std::string>& columns) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        return std::make_unique<pqxx::tablewriter>(tx, table, columns.begin(), columns.end());
#pragma GCC diagnostic pop
    }
    void separate() {
        if (!first_) buffer_ += '\t';
        first_ = false;
    }
    // tablewriter ends what it sends with one newline of its own.
    void flush() {
        if (buffer_.empty()) return;
        writer_->write_raw_line(buffer_);
        buffer_.clear();
    }

    std::unique_ptr<pqxx::tablewriter> writer_;
    std::string buffer_;
    std::string scratch_;
    bool first_ = true;
};

// The foreign keys of comebacks, checked here rather than by constraints (see
// schema/001_initial.sql): every entity a batch's comebacks name must come
// with the batch, as normalize() guarantees. A miss is a bug upstream;
// committing it would leave the report without a name.
void check_references(const normalized_batch& batch) {
    auto ids = [](const std::vector<entity>& entities) {
        std::unordered_set<std::string_view> set;
        set.reserve(entities.size());
        for (const auto& e : entities) set.insert(e.id);
        return set;
    };
    const auto contacts = ids(batch.contacts);
    const auto users = ids(batch.users);
    const auto groups = ids(batch.user_groups);
    const auto offices = ids(batch.offices);
    auto check = [&](const comeback_record& c, const std::optional<std::string>& id,
                     const std::unordered_set<std::string_view>& known, const char* what) {
        if (id && known.count(*id) == 0) {
            throw std::logic_error("window_loader::add: comeback " + c.id + " of customer " +
                                   batch.customer_id + " refers to " + what + " " + *id +
                                   ", which the batch does not carry");
        }
    };
    for (const auto& c : batch.comebacks) {
        check(c, c.contact_id, contacts, "contact");
        check(c, c.booked_by_user_id, users, "user");
        check(c, c.assigned_user_id, users, "user");
        check(c, c.assigned_group_id, groups, "user group");
        check(c, c.assigned_office_id, offices, "office");
    }
}

std::string window_description(const window_key& key) {
    return "customer " + key.customer_id + " " + key.date_criteria + " window " +
           date::format("%F", key.first_day) + ".." + date::format("%F", key.end_day);
}

}  // namespace

struct window_loader::impl {
    impl(pqxx::connection& connection, std::string schema_name, window_key window)
        : schema(std::move(schema_name)),
          quoted(quoted_schema(schema)),
          key(std::move(window)),
          started(std::chrono::steady_clock::now()),
          tx(connection, "load window") {}

    std::string schema;
    std::string quoted;
    window_key key;
    std::chrono::steady_clock::time_point started;
    pqxx::work tx;
    long long entity_seq = 0;
    std::size_t staged = 0;  // comebacks streamed, duplicates included
    load_counts counts;      // filled in as commit() merges
    bool finished = false;

    void ensure_staging() {
        auto row = tx.exec1("SELECT to_regclass('pg_temp.load_comebacks') IS NULL");
        if (row[0].as<bool>()) tx.exec0(create_staging);
    }

    void stream_comebacks(const std::vector<comeback_record>& comebacks) {
        if (comebacks.empty()) return;
        copy_writer copy{tx, "load_comebacks",
                         {"idx", "comeback_id", "contact_id", "booked_by_user_id",
                          "assigned_user_id", "assigned_group_id", "assigned_office_id", "state",
                          "origin", "occurs_at_us", "booked_at_us"}};
        for (const auto& c : comebacks) {
            copy.number(static_cast<long long>(c.index));
            copy.text(c.id);
            copy.text(c.contact_id);
            copy.text(c.booked_by_user_id);
            copy.text(c.assigned_user_id);
            copy.text(c.assigned_group_id);
            copy.text(c.assigned_office_id);
            copy.text(c.state);
            copy.text(c.origin);
            copy.micros(c.occurs_at);
            copy.micros(c.booked_at);
            copy.end_row();
        }
        copy.complete();
        staged += comebacks.size();
    }

    void stream_entities(const normalized_batch& batch) {
        const std::array<const std::vector<entity>*, 4> sets{&batch.contacts, &batch.users,
                                                             &batch.user_groups, &batch.offices};
        bool any = false;
        for (const auto* set : sets) any = any || !set->empty();
        if (!any) return;
        copy_writer copy{tx, "load_entities", {"seq", "kind", "entity_id", "name"}};
        for (std::size_t i = 0; i < sets.size(); ++i) {
            for (const auto& e : *sets[i]) {
                copy.number(entity_seq++);
                copy.plain(entity_tables[i].kind);
                copy.text(e.id);
                copy.text(e.name);
                copy.end_row();
            }
        }
        copy.complete();
    }

    void stream_rejections(std::span<const rejection> rejections) {
        if (rejections.empty()) return;
        copy_writer copy{tx, "load_rejections", {"idx", "comeback_id", "reason", "raw"}};
        for (const auto& r : rejections) {
            copy.number(static_cast<long long>(r.index));
            copy.text(r.id);
            copy.text(r.reason);
            copy.text(r.raw);
            copy.end_row();
        }
        copy.complete();
        counts.rejected += rejections.size();
    }

    // Entities first: comebacks reference them. Rows that would not change are
    // filtered out before the INSERT, so ON CONFLICT neither rewrites nor locks them.
    // Each staged entity looks its stored row up by primary key (see merge_comebacks()).
    void merge_entities(const std::string& stamp) {
        for (const auto& t : entity_tables) {
            const std::string table = t.table;
            const std::string id = t.id_column;
            tx.exec_params0(
                "INSERT INTO " + table + " AS t (customer_id, " + id +
                    ", name, first_seen_at, last_seen_at)"
                    " SELECT $1, s.entity_id, s.name, $2::timestamptz, $2::timestamptz"
                    " FROM (SELECT DISTINCT ON (entity_id COLLATE \"C\") entity_id, name"
                    "       FROM pg_temp.load_entities WHERE kind = $3"
                    "       ORDER BY entity_id COLLATE \"C\", seq DESC) s"
                    " LEFT JOIN LATERAL (SELECT e." + id + ", e.name, e.last_seen_at FROM " + table +
                    "   e WHERE e.customer_id = $1 AND e." + id + " = s.entity_id LIMIT 1) e ON true"
                    " WHERE e." + id + " IS NULL OR e.name IS DISTINCT FROM s.name"
                    "    OR e.last_seen_at < $2::timestamptz - interval '1 day'"
                    " ORDER BY s.entity_id COLLATE \"C\""
                    " ON CONFLICT (customer_id, " + id + ") DO UPDATE"
                    " SET name = excluded.name, last_seen_at = excluded.last_seen_at"
                    " WHERE t.name IS DISTINCT FROM excluded.name"
                    "    OR t.last_seen_at < excluded.last_seen_at - interval '1 day'",
                key.customer_id, stamp, std::string(t.kind));
        }
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
    void merge_comebacks(const std::string& stamp) {
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
        auto row = tx.exec_params1(
            "WITH latest AS MATERIALIZED ("
            "  SELECT DISTINCT ON (comeback_id COLLATE \"C\") comeback_id, contact_id, booked_by_user_id,"
            "   assigned_user_id, assigned_group_id, assigned_office_id, state, origin, "
            COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("occurs_at_us") " AS occurs_at, "
            COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("booked_at_us") " AS booked_at"
            "  FROM pg_temp.load_comebacks ORDER BY comeback_id COLLATE \"C\", idx DESC),"
            // Rows identical to a stored live row of the window's time range
            // need no lookup: one index range scan and an EXCEPT (NULLs
            // compare equal, like IS NOT DISTINCT FROM) drop them, so a
            // re-fetch of unchanged data looks nothing up. Any subset of the
            // stored rows is correct here; for criteria other than Occurrence
            // the range merely finds fewer of them.
            " candidates AS ("
            "  SELECT comeback_id, " + columns + " FROM latest"
            "  EXCEPT SELECT comeback_id, " + columns + " FROM comebacks"
            "  WHERE customer_id = $1 AND deleted_at IS NULL"
            "    AND occurs_at >= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$3")
            "    AND occurs_at <= " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$4") "),"
            // What is left is new, changed, undeleted or moved in time: decided
            // once against the current row, found by primary key.
            " delta AS MATERIALIZED ("
            "  SELECT s.comeback_id,"
            "   CASE WHEN c.comeback_id IS NULL THEN 'insert'"
            "        WHEN c.deleted_at IS NOT NULL THEN 'undelete' ELSE 'update' END AS change, " +
                s_cols +
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
                "  WHERE d.change <> 'insert')"
                " SELECT (SELECT count(*) FROM latest),"
                "  count(*) FILTER (WHERE change = 'insert'),"
                "  count(*) FILTER (WHERE change = 'update'),"
                "  count(*) FILTER (WHERE change = 'undelete')"
                " FROM delta",
            key.customer_id, stamp, sql_time::micros(key.from), sql_time::micros(key.to));
        tx.exec0("RESET enable_hashagg");
        counts.rows_seen = row[0].as<std::size_t>();
        counts.inserted = row[1].as<std::size_t>();
        counts.updated = row[2].as<std::size_t>();
        counts.undeleted = row[3].as<std::size_t>();
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
    }

    // Updates, undeletes and deletes (load_delta) close the comeback's current
    // version, then open a new one. Most windows have none: a first load only
    // inserts (merge_comebacks() wrote those versions), a re-run of unchanged
    // data changes nothing, so the statements are skipped. The close is an
    // index lookup per changed id in the partial index of current versions.
    void write_history(const std::string& stamp) {
        if (counts.updated + counts.undeleted + counts.deleted == 0) return;
        tx.exec_params0(
            "UPDATE comeback_history h SET valid_to = $2::timestamptz"
            " WHERE h.customer_id = $1 AND h.valid_to IS NULL"
            "   AND h.comeback_id = ANY (ARRAY(SELECT comeback_id FROM pg_temp.load_delta))",
            key.customer_id, stamp);
        tx.exec_params0(
            "INSERT INTO comeback_history (customer_id, comeback_id, valid_from, valid_to, change, " +
                std::string(tracked_columns) + ", is_deleted)"
                " SELECT $1, d.comeback_id, $2::timestamptz, NULL, d.change, " +
                prefixed_tracked_columns("d.") + ", d.is_deleted FROM pg_temp.load_delta d",
            key.customer_id, stamp);
    }

    void store_rejections(const std::string& stamp) {
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

    void update_ledger(const std::string& stamp, const load_counts& counts, const fetch_info& info) {
        const auto load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - started)
                                 .count();
        tx.exec_params0(
            "INSERT INTO sync_windows AS w (customer_id, date_criteria, first_day, end_day,"
            "  window_from, window_to, status, attempts, rows_seen, rows_duplicate, rows_changed,"
            "  rows_rejected, last_http_status, last_error, response_bytes, fetch_ms, load_ms,"
            "  fetched_at, attempted_at)"
            " VALUES ($1, $2, " COMEBACK_SQL_DAYS_TO_DATE("$3") ", " COMEBACK_SQL_DAYS_TO_DATE("$4")
            ", " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$5") ", " COMEBACK_SQL_MICROS_TO_TIMESTAMPTZ("$6")
            ", 'complete', 1, $7, $8, $9, $10, $11, NULL, $12, $13, $14,"
            "  $15::timestamptz, $15::timestamptz)"
            " ON CONFLICT (customer_id, date_criteria, first_day, end_day) DO UPDATE SET"
            "  window_from = excluded.window_from, window_to = excluded.window_to,"
            "  status = 'complete', attempts = w.attempts + 1, rows_seen = excluded.rows_seen,"
            "  rows_duplicate = excluded.rows_duplicate, rows_changed = excluded.rows_changed,"
            "  rows_rejected = excluded.rows_rejected, last_http_status = excluded.last_http_status,"
            "  last_error = NULL, response_bytes = excluded.response_bytes,"
            "  fetch_ms = excluded.fetch_ms, load_ms = excluded.load_ms,"
            "  fetched_at = excluded.fetched_at, attempted_at = excluded.attempted_at",
            key.customer_id, key.date_criteria, sql_time::day_number(key.first_day),
            sql_time::day_number(key.end_day), sql_time::micros(key.from), sql_time::micros(key.to),
            static_cast<long long>(counts.rows_seen), static_cast<long long>(counts.duplicates),
            static_cast<long long>(counts.changed()), static_cast<long long>(counts.rejected),
            info.http_status, static_cast<long long>(info.bytes),
            static_cast<long long>(info.duration.count()), static_cast<long long>(load_ms), stamp);
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

window_loader::window_loader(pqxx::connection& connection, std::string schema, window_key key) {
    check_key(key);
    impl_ = std::make_unique<impl>(connection, std::move(schema), std::move(key));
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
    check_references(batch);
    impl_->stream_entities(batch);
    impl_->stream_comebacks(batch.comebacks);
    impl_->stream_rejections(rejections);
}

load_counts window_loader::commit(const fetch_info& info) {
    if (impl_->finished) throw std::logic_error("window_loader::commit called twice");
    impl_->finished = true;
    auto& tx = impl_->tx;
    // One instant for every row this window writes. Read after the customer
    // lock was granted, so it is later than the stamp of any load that
    // committed before: history versions of a comeback stay in order.
    const auto stamp = tx.exec1("SELECT clock_timestamp()::text")[0].as<std::string>();
    impl_->merge_entities(stamp);
    impl_->merge_comebacks(stamp);
    impl_->soft_delete(stamp);
    impl_->write_history(stamp);
    impl_->store_rejections(stamp);
    auto& counts = impl_->counts;
    counts.duplicates = impl_->staged - counts.rows_seen;
    impl_->update_ledger(stamp, counts, info);
    tx.commit();
    return counts;
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
