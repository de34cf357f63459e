-- Re-fetching a window whose content has not changed is the daemon's most
-- common load. The ledger now remembers what each window's last complete load
-- held, so such a load can confirm it instead of comparing every row again.

-- content_digest: SHA-256 (hex) of everything the last complete load of the
-- window would write, as the loader formatted it. changed_at: the last time
-- any load changed stored data this window covers (its comebacks' occurs_at
-- range, or any entity name of the customer). compared_at: the last load that
-- compared the window row by row. A load whose content equals content_digest,
-- of a window not changed since fetched_at and compared less than a day ago,
-- writes only the ledger row (and its rejected rows).
ALTER TABLE sync_windows
    ADD COLUMN content_digest text COLLATE "C",
    ADD COLUMN changed_at timestamptz,
    ADD COLUMN compared_at timestamptz;

-- The partial unique index of current history versions cost every new
-- comeback a third B-tree insertion. Closing a version now finds it through
-- the primary key (customer_id, comeback_id, valid_from): a comeback has a
-- handful of versions. The loader opens a version only after closing the
-- current one, under the customer's lock, and the tests check that at most
-- one version per comeback is open.
DROP INDEX comeback_history_current;
