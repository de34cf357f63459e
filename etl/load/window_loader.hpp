#pragma once
// Loading one fetched window into PostgreSQL: one transaction, all or nothing.
// All SQL of the project lives in etl/load/; the loader's statements are in
// window_loader_sql.hpp, the ledger's (window_key, record_window_failure) in
// ledger.hpp.

#include "load/ledger.hpp"
#include "load/pqxx_fwd.hpp"
#include "model/comeback.hpp"
#include "normalize/normalize.hpp"

#include <date/date.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace comeback {

struct fetch_info {
    int http_status = 200;
    std::chrono::milliseconds duration{0};
    std::uint64_t bytes = 0;
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
    std::size_t changed() const { return inserted + updated + deleted + undeleted; }
};

struct load_options {
    // Compare every row with the database even when the response equals the
    // window's last complete load (backfill --recheck): repairs rows changed
    // by hand in the database.
    bool recheck = false;
    // The ticket the fetch took before it began (load/fencing.hpp): the load
    // is refused with stale_fetch_error when the window's last committed load
    // had a later one, and records it when it commits. None: not fenced.
    std::optional<std::int64_t> fetch_ticket{};
};

// One window's transaction. The constructor begins it, takes the customer's
// transaction advisory lock and checks the fetch ticket (load_options); add() formats batches into staging (held in memory
// up to a few MiB, streamed beyond); commit() either confirms the window's last
// load, when the content digest matches and nothing changed the window since,
// or merges, soft-deletes and writes history; then writes rejects and the
// ledger row, and commits.
// Destroyed without commit(): rolled back, nothing of the window remains.
// Throws pqxx exceptions (infrastructure), stale_fetch_error (a newer fetch of
// the window committed first) and std::logic_error (misuse).
class window_loader {
public:
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

}  // namespace comeback
