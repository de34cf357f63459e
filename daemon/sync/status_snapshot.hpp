#pragma once
// What the status page shows, read from the ledger: the sync_status view and
// every customer's windows, with complete windows past their freshness tier
// marked stale by the rule the scheduler uses (etl/plan).

#include "config/config.hpp"
#include "load/ledger.hpp"
#include "load/pqxx_fwd.hpp"
#include "observability/status_page.hpp"

#include <cstddef>
#include <span>
#include <vector>

namespace comeback {

// Pure: one customer per configured customer and per customer in the ledger,
// by customer_id, each with its windows counted by state; the customers of
// `strip_pages` (page numbers as the page has them) also keep their strips.
// A complete window of the fresh range whose last fetch is older than its
// refresh interval at `now` becomes "stale".
status_snapshot build_status_snapshot(const std::vector<customer_status>& statuses,
                                      const std::vector<customer_ledger_entry>& windows,
                                      const config& cfg, instant now,
                                      std::span<const std::size_t> strip_pages);

// Reads the ledger (two short read-only transactions; the windows a chunk at
// a time, for_each_ledger_window) and builds the snapshot, read_at = `now`:
// what it keeps grows with the customers and the strips of `strip_pages`,
// not with the ledger. Throws pqxx exceptions.
status_snapshot read_status_snapshot(pqxx::connection& connection, const config& cfg, instant now,
                                     std::span<const std::size_t> strip_pages);

}  // namespace comeback
