-- Most re-fetches return exactly the bytes the window's last load read. The
-- ledger now keeps a digest of those bytes, so such a response can confirm the
-- window before it is parsed at all.

-- response_digest: SHA-256 (hex) of the last complete load's response body,
-- preceded by everything else that decides what the body becomes in the
-- database (comeback-sync's version, the API time zone, the field limit, the
-- date criteria, the privacy mode and pseudonym key). A response whose digest
-- equals it confirms the window under the same rule as content_digest: the
-- window unchanged since fetched_at and compared row by row less than a day
-- ago. A held load leaves it as the last complete load wrote it.
ALTER TABLE sync_windows ADD COLUMN response_digest text COLLATE "C";
