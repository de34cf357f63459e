-- The first shape of the database. Applied by comeback-sync's migrator with
-- search_path set to the configured schema (default vitec), so no name below
-- is schema-qualified. Every key starts with customer_id: the tables can be
-- distributed by it (Citus) without changing a key.
--
-- Ids (customer_id, the *_id columns, date_criteria, raw_md5) are COLLATE
-- "C": they are opaque keys, compared byte by byte. Every index lookup and
-- sort on them then compares with memcmp instead of the database locale's
-- strcoll, which cost the loader a large share of its time; names keep the
-- database's collation, for people to sort by.

-- Entities, as the report nests them. A renamed entity keeps its key and takes
-- the new name. last_seen_at is kept to the day: a load refreshes it only when
-- it is a day old, so re-fetching unchanged data writes no tuple.
CREATE TABLE contacts (
    customer_id   text COLLATE "C" NOT NULL,
    contact_id    text COLLATE "C" NOT NULL,
    name          text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, contact_id)
);

-- Booked-by and assigned users share one id space.
CREATE TABLE users (
    customer_id   text COLLATE "C" NOT NULL,
    user_id       text COLLATE "C" NOT NULL,
    name          text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, user_id)
);

CREATE TABLE user_groups (
    customer_id   text COLLATE "C" NOT NULL,
    group_id      text COLLATE "C" NOT NULL,
    name          text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, group_id)
);

-- An office is keyed by its own customer id (assignedTo.office.customerId).
CREATE TABLE offices (
    customer_id   text COLLATE "C" NOT NULL,
    office_id     text COLLATE "C" NOT NULL,
    name          text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, office_id)
);

-- One row per comeback, current state. deleted_at is set when a complete
-- fetch of a window covering occurs_at no longer contains the comeback, and
-- cleared when it comes back. last_seen_at is the last load that wrote the row
-- as present (or, when it was deleted, the window's previous complete fetch);
-- comeback_report adds the newest complete fetch of its window on top, so
-- confirming an unchanged row writes nothing here.
CREATE TABLE comebacks (
    customer_id        text COLLATE "C" NOT NULL,
    comeback_id        text COLLATE "C" NOT NULL,
    contact_id         text COLLATE "C",
    booked_by_user_id  text COLLATE "C",
    assigned_user_id   text COLLATE "C",
    assigned_group_id  text COLLATE "C",
    assigned_office_id text COLLATE "C",
    state              text,
    origin             text,
    occurs_at          timestamptz,
    booked_at          timestamptz,
    first_seen_at      timestamptz NOT NULL,
    last_seen_at       timestamptz NOT NULL,
    deleted_at         timestamptz,
    PRIMARY KEY (customer_id, comeback_id)
);
-- The *_id columns refer to the entity tables by (customer_id, id). They are
-- not FOREIGN KEY constraints: PostgreSQL checks those row by row, which cost
-- the loader most of its speed. Each batch carries every entity its comebacks
-- refer to; the loader checks that as the batch arrives, writes the entities
-- before the comebacks, and never deletes an entity.

-- The soft delete and the report's window lookup scan a customer's time range.
CREATE INDEX comebacks_customer_occurs_at ON comebacks (customer_id, occurs_at);

-- One row per version of a comeback: [valid_from, valid_to), valid_to NULL for
-- the current version. change says what made the version: insert, update,
-- delete or undelete.
CREATE TABLE comeback_history (
    customer_id        text COLLATE "C" NOT NULL,
    comeback_id        text COLLATE "C" NOT NULL,
    valid_from         timestamptz NOT NULL,
    valid_to           timestamptz,
    change             text        NOT NULL
        CHECK (change IN ('insert', 'update', 'delete', 'undelete')),
    contact_id         text COLLATE "C",
    booked_by_user_id  text COLLATE "C",
    assigned_user_id   text COLLATE "C",
    assigned_group_id  text COLLATE "C",
    assigned_office_id text COLLATE "C",
    state              text,
    origin             text,
    occurs_at          timestamptz,
    booked_at          timestamptz,
    is_deleted         boolean     NOT NULL,
    PRIMARY KEY (customer_id, comeback_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- At most one current version per comeback; closing it is an index lookup.
CREATE UNIQUE INDEX comeback_history_current
    ON comeback_history (customer_id, comeback_id) WHERE valid_to IS NULL;

-- The ledger: one row per (customer, date criteria, window). It says exactly
-- which parts of time are complete. first_day/end_day are local days in the API
-- time zone, end_day exclusive; window_from/window_to are the request's bounds,
-- both inclusive. fetched_at is the last complete load; attempted_at the last
-- attempt of any outcome.
CREATE TABLE sync_windows (
    customer_id      text COLLATE "C" NOT NULL,
    date_criteria    text COLLATE "C" NOT NULL,
    first_day        date        NOT NULL,
    end_day          date        NOT NULL,
    window_from      timestamptz NOT NULL,
    window_to        timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'complete', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    rows_seen        integer,
    rows_duplicate   integer,
    rows_changed     integer,
    rows_rejected    integer,
    last_http_status integer,
    last_error       text,
    response_bytes   bigint,
    fetch_ms         bigint,
    load_ms          bigint,
    fetched_at       timestamptz,
    attempted_at     timestamptz,
    PRIMARY KEY (customer_id, date_criteria, first_day, end_day),
    CHECK (end_day > first_day),
    CHECK (window_to > window_from)
);

-- comeback_report finds the window covering a comeback's occurs_at.
CREATE INDEX sync_windows_customer_from
    ON sync_windows (customer_id, date_criteria, window_from);

-- Elements of a response that could not be read as comebacks. The same bad
-- element seen again (same text, same window) bumps last_seen_at and
-- times_seen instead of adding a row.
CREATE TABLE rejected_rows (
    customer_id   text COLLATE "C" NOT NULL,
    date_criteria text COLLATE "C" NOT NULL,
    first_day     date        NOT NULL,
    end_day       date        NOT NULL,
    raw_md5       text COLLATE "C" NOT NULL,
    comeback_id   text COLLATE "C",
    reason        text        NOT NULL,
    raw           text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    times_seen    integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (customer_id, date_criteria, first_day, end_day, raw_md5)
);

-- The BI contract: one row per comeback. Later migrations may add columns at
-- the end, never drop, rename or reorder these, and never drop the view.
CREATE VIEW comeback_report AS
SELECT
    c.customer_id,
    c.comeback_id,
    c.contact_id,
    ct.name AS contact_name,
    c.booked_by_user_id,
    bu.name AS booked_by_name,
    c.assigned_user_id,
    au.name AS assigned_user_name,
    c.assigned_group_id,
    ag.name AS assigned_group_name,
    c.assigned_office_id,
    ao.name AS assigned_office_name,
    c.state,
    c.origin,
    c.occurs_at,
    c.booked_at,
    c.deleted_at IS NOT NULL AS is_deleted,
    c.first_seen_at,
    CASE
        WHEN c.deleted_at IS NOT NULL OR covering.window_to < c.occurs_at THEN c.last_seen_at
        ELSE greatest(c.last_seen_at, covering.fetched_at)
    END AS last_seen_at
FROM comebacks c
LEFT JOIN contacts ct
    ON ct.customer_id = c.customer_id AND ct.contact_id = c.contact_id
LEFT JOIN users bu
    ON bu.customer_id = c.customer_id AND bu.user_id = c.booked_by_user_id
LEFT JOIN users au
    ON au.customer_id = c.customer_id AND au.user_id = c.assigned_user_id
LEFT JOIN user_groups ag
    ON ag.customer_id = c.customer_id AND ag.group_id = c.assigned_group_id
LEFT JOIN offices ao
    ON ao.customer_id = c.customer_id AND ao.office_id = c.assigned_office_id
-- The latest-starting Occurrence window that begins at or before occurs_at: if
-- it also reaches occurs_at, its last complete fetch confirmed the row.
LEFT JOIN LATERAL (
    SELECT w.window_to, w.fetched_at
    FROM sync_windows w
    WHERE w.customer_id = c.customer_id
      AND w.date_criteria = 'Occurrence'
      AND w.window_from <= c.occurs_at
    ORDER BY w.window_from DESC
    LIMIT 1
) covering ON true;

-- Per customer: how complete and how fresh the copy is.
CREATE VIEW sync_status AS
SELECT
    w.customer_id,
    max(w.fetched_at) AS last_success,
    count(*) FILTER (WHERE w.status = 'complete') AS windows_complete,
    count(*) FILTER (WHERE w.status = 'failed') AS windows_failed,
    count(*) FILTER (WHERE w.status = 'pending') AS windows_pending,
    stale.first_day AS stalest_window_first_day,
    stale.end_day AS stalest_window_end_day,
    stale.fetched_at AS stalest_window_fetched_at,
    failure.last_error,
    failure.attempted_at AS last_error_at
FROM sync_windows w
LEFT JOIN LATERAL (
    -- The window whose last complete fetch is oldest; never fetched comes first.
    SELECT s.first_day, s.end_day, s.fetched_at
    FROM sync_windows s
    WHERE s.customer_id = w.customer_id
    ORDER BY s.fetched_at ASC NULLS FIRST, s.first_day
    LIMIT 1
) stale ON true
LEFT JOIN LATERAL (
    SELECT f.last_error, f.attempted_at
    FROM sync_windows f
    WHERE f.customer_id = w.customer_id AND f.last_error IS NOT NULL
    ORDER BY f.attempted_at DESC NULLS LAST
    LIMIT 1
) failure ON true
GROUP BY w.customer_id, stale.first_day, stale.end_day, stale.fetched_at,
         failure.last_error, failure.attempted_at;
