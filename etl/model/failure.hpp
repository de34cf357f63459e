#pragma once
// Every way a window can fail, in one list: each kind with its metric label,
// its retry rule and what an operator should do about it. The stages classify
// what they meet into these kinds (etl/fetch/outcome.cpp for HTTP and the
// network, etl/load/database_failure.cpp for PostgreSQL; an exception neither
// recognises is internal_error), and everything downstream reads the rule and
// the label from here: the retry driver, the customer scheduler, metrics, logs and
// the troubleshooting table in docs/operations.md (a test keeps it equal to
// this list).
//
// Adding a kind: one enumerator, one row of failure_kinds in the same order
// (the static_assert below refuses a mismatch), and the classification that
// produces it. Labels are a metric contract: never rename one.

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace comeback {

enum class failure_kind {
    broken_response,
    request_rejected,
    credentials_rejected,
    access_denied,
    endpoint_missing,
    throttled,
    transient,
    tls_rejected,
    response_too_large,
    field_too_large,
    protocol_violation,
    database_lost,
    database_timeout,
    database_conflict,
    database_refused,
    stale_fetch,
    lease_lost,
    all_rejected,
    internal_error,  // stays last: the list's size is read from it
};

// What becomes of the window, and of its customer, after a failure.
enum class retry_rule {
    retry,          // tried again at once, after retry_delay(), up to vitec.retry.max_attempts
    next_cycle,     // not retried: the window stays failed until a later cycle or backfill
    park_customer,  // not retried: the customer does no work for vitec.retry.auth_backoff
    end_cycle,      // not retried: the customer's cycle stops and backs off (in backfill,
                    // its remaining windows are not run)
    dropped,        // not a failure: the response is dropped unwritten, the ledger keeps the
                    // newer load it has; nothing is retried, recorded or counted as failed
};

// The rule as the troubleshooting table says it.
constexpr std::string_view to_string(retry_rule rule) {
    switch (rule) {
        case retry_rule::retry: return "yes, with back-off";
        case retry_rule::next_cycle: return "no: the next cycle tries again";
        case retry_rule::park_customer: return "no: the customer waits `vitec.retry.auth_backoff`";
        case retry_rule::end_cycle: return "no: the customer's cycle ends and backs off";
        case retry_rule::dropped: return "no: dropped, not a failure";
    }
    return "unknown";
}

struct failure_kind_info {
    failure_kind kind;
    std::string_view label;   // the metric label (requests_total{outcome}) and the log field kind=
    retry_rule rule;
    std::string_view cause;   // what happened
    std::string_view action;  // what an operator should do
};

// The label of an attempt that committed its window: requests_total{outcome="rows"}.
inline constexpr std::string_view committed_label = "rows";

inline constexpr std::array<failure_kind_info, 19> failure_kinds{{
    {failure_kind::broken_response, "broken_response", retry_rule::retry,
     "HTTP 200 with a body that is not a usable JSON array: another content type, invalid or "
     "truncated JSON, an object",
     "Nothing if rare. If it persists, the error says what was wrong: an HTML page means "
     "`vitec.base_url` reaches something else (a proxy?)"},
    {failure_kind::request_rejected, "request_rejected", retry_rule::next_cycle,
     "HTTP 400, or a status the report never answers (1xx, 2xx but 200, 3xx, other 4xx)",
     "Read Vitec's message in the error: usually `sync.date_criteria` or a date Vitec does not "
     "accept. A redirect means `vitec.base_url` is not the API's address"},
    {failure_kind::credentials_rejected, "credentials_rejected", retry_rule::park_customer,
     "HTTP 401: the user name or this customer's password was refused",
     "Fix `vitec.username` or the customer's password; the customer tries again after "
     "`vitec.retry.auth_backoff`, or at once after a restart"},
    {failure_kind::access_denied, "access_denied", retry_rule::park_customer,
     "HTTP 403: the account has no access to this customer's data",
     "The integrator account has no access to that customer: check the customer id, or ask "
     "Vitec; the customer waits as for a 401"},
    {failure_kind::endpoint_missing, "endpoint_missing", retry_rule::next_cycle, "HTTP 404",
     "Check `vitec.base_url`: scheme, host and any path in front of `/Report`"},
    {failure_kind::throttled, "throttled", retry_rule::retry,
     "HTTP 429 or 503: Vitec asks for a pause (`Retry-After` honoured, capped by "
     "`vitec.retry.max_retry_after`)",
     "Nothing if rare. If frequent, lower `vitec.max_requests_per_second` or "
     "`vitec.max_concurrent_requests`"},
    {failure_kind::transient, "transient", retry_rule::retry,
     "Another 5xx, or the network: resolve, connect, TLS handshake, reset, timeout, a body "
     "cut short",
     "Nothing if rare. If it persists, check DNS, the network path and Vitec's status; "
     "timeouts on large windows call for a larger `vitec.request_timeout`"},
    {failure_kind::tls_rejected, "tls_rejected", retry_rule::next_cycle,
     "The server's certificate failed verification: unknown CA, expired, another host name",
     "Set `vitec.ca_file` to the CA that signed it, or put the host name the certificate "
     "names in `vitec.base_url`; a certificate fixed on the server is picked up at the next "
     "cycle, without a restart"},
    {failure_kind::response_too_large, "response_too_large", retry_rule::next_cycle,
     "The body is longer than `vitec.max_response_bytes`, announced (`Content-Length`) or as it "
     "arrives; reading stops there",
     "A window this large needs a shorter `sync.window`, or a higher `vitec.max_response_bytes` "
     "if the memory and the time are there; a server sending endless data is refused the same way"},
    {failure_kind::field_too_large, "field_too_large", retry_rule::next_cycle,
     "One JSON string, key or number in the body is longer than `vitec.max_field_bytes`; the "
     "error names the field and the element",
     "If Vitec really sends values that long, raise `vitec.max_field_bytes`; otherwise the "
     "server (or something between) sends garbage: ask Vitec"},
    {failure_kind::protocol_violation, "protocol_violation", retry_rule::next_cycle,
     "The server broke HTTP: a response head over 32 KiB, a chunk header or trailer over 64 KiB, "
     "malformed framing. These ceilings are fixed",
     "Not Vitec as it is known: check that `vitec.base_url` reaches Vitec Connect and not a "
     "proxy or another service; over HTTPS the bytes come as the server sent them, so trying "
     "again at once would meet the same answer"},
    {failure_kind::database_lost, "database_lost", retry_rule::retry,
     "The PostgreSQL connection could not be opened within `database.connect_timeout`, was "
     "lost (a restart, the network, a terminated backend, too many connections), or the "
     "server did not answer a call within `database.statement_timeout` plus "
     "`database.connect_timeout`, or a commit's outcome is unknown; the window's transaction "
     "is rolled back. The next attempt waits until the database answers again, at most "
     "`database.outage_grace`",
     "Nothing if rare. If it persists, check that PostgreSQL is up and reachable with "
     "`database.conninfo` (`/healthz` and `comeback-sync status` say whether it answers), its "
     "`max_connections` and its log"},
    {failure_kind::database_timeout, "database_timeout", retry_rule::retry,
     "PostgreSQL cancelled a statement at `database.statement_timeout`, a lock wait at "
     "`database.lock_timeout` (another process held the customer's load lock that long), or "
     "ended the session after `database.idle_in_transaction_timeout`; the window's "
     "transaction is rolled back",
     "Nothing if rare. If it persists, look in `pg_stat_activity` for what holds locks on the "
     "schema's tables; a window whose load legitimately takes longer needs a larger "
     "`database.statement_timeout`"},
    {failure_kind::database_conflict, "database_conflict", retry_rule::retry,
     "PostgreSQL rolled the window's transaction back: a serialization failure or a deadlock",
     "Nothing if rare. If frequent, look in the PostgreSQL log for other writers to the "
     "schema's tables"},
    {failure_kind::database_refused, "database_refused", retry_rule::next_cycle,
     "PostgreSQL refused a statement: a missing privilege, a broken constraint, a missing "
     "table, a read-only or full database. The message names the database, the SQLSTATE and "
     "what to check",
     "Fix what the message names: grant the role its privileges (\"Database roles and least "
     "privilege\" above), run `comeback-sync migrate`, point `database.conninfo` at the "
     "primary, free disk"},
    {failure_kind::stale_fetch, "stale_fetch", retry_rule::dropped,
     "A fetch of the same window that began after this one, or may have (a re-fetch confirmed, "
     "or a first load committed, without a ticket), committed first (another instance, a "
     "backfill, or this attempt outlived a database restart): the older response is dropped, "
     "not written (`window.dropped`)",
     "Nothing: the window holds the newer response. Frequent ones mean two processes fetch "
     "the same windows at once, e.g. a backfill beside the daemon"},
    {failure_kind::lease_lost, "lease_lost", retry_rule::dropped,
     "This instance lost the customer's lease while the window was in flight (its lease "
     "connection failed or the database restarted): the window is stopped and rolled back "
     "(`window.dropped`); the instance holding the lease now works it",
     "Nothing if rare. If frequent, see `lease.lost` lines: the lease connection keeps "
     "failing, so check the network path to PostgreSQL"},
    {failure_kind::all_rejected, "all_rejected", retry_rule::next_cycle,
     "HTTP 200 with a JSON array whose every element was rejected (a renamed key, PascalCase "
     "keys, another format): nothing in it says which stored comebacks still exist, so nothing "
     "is loaded or deleted",
     "Read the first rejection's reason in the error: `id is missing` with `Id` in the response "
     "means Vitec changed the report's format, which needs a new comeback-sync; the window is "
     "fetched again at the next cycle"},
    {failure_kind::internal_error, "internal_error", retry_rule::end_cycle,
     "An exception no stage classifies: a programming error, or memory exhaustion",
     "Report it with the `window.failed` and `customer.cycle_failed` lines (customer, window, "
     "message); the customer backs off and tries again, the others go on"},
}};

namespace detail {
constexpr bool failure_kinds_in_order() {
    for (std::size_t i = 0; i < failure_kinds.size(); ++i) {
        if (failure_kinds[i].kind != static_cast<failure_kind>(i)) return false;
    }
    return failure_kinds.size() == static_cast<std::size_t>(failure_kind::internal_error) + 1;
}
}  // namespace detail
static_assert(detail::failure_kinds_in_order(), "failure_kinds needs one row per failure_kind, in order");

constexpr const failure_kind_info& describe(failure_kind kind) {
    return failure_kinds[static_cast<std::size_t>(kind)];
}
constexpr std::string_view to_string(failure_kind kind) { return describe(kind).label; }
constexpr retry_rule rule_of(failure_kind kind) { return describe(kind).rule; }

// Tried again within the window's attempts.
constexpr bool is_retryable(failure_kind kind) { return rule_of(kind) == retry_rule::retry; }
// The database could not be reached or did not answer: the next attempt waits
// until it answers again, and a customer does not back off for it.
constexpr bool is_database_outage(failure_kind kind) { return kind == failure_kind::database_lost; }
// Not a failure: the response was dropped unwritten (stale_fetch, lease_lost).
constexpr bool is_dropped(failure_kind kind) { return rule_of(kind) == retry_rule::dropped; }
// Stops work on the customer for the long auth back-off; other customers go on.
constexpr bool parks_customer(failure_kind kind) { return rule_of(kind) == retry_rule::park_customer; }

// The metric label of an attempt's outcome: committed_label, or its failure's label.
constexpr std::string_view outcome_label(std::optional<failure_kind> kind) {
    return kind ? to_string(*kind) : committed_label;
}

// One failure, as the stage that met it classified it.
struct failure {
    failure_kind kind = failure_kind::internal_error;
    int http_status = 0;  // the HTTP status read; 0 when none was (or the failure is not HTTP)
    std::string message;  // for operators: what failed and what to check; cut, never a secret
    std::optional<std::chrono::milliseconds> retry_after;  // a server's Retry-After, capped
};

}  // namespace comeback
