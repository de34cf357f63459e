-- Loads and leases that hold whatever the clocks and the network do.
--
-- sync_customers: one row per customer a daemon has leased or fetched in this
-- schema. lease_key is the customer's own number in the schema's lease space
-- (etl/load/lease_sql.hpp), handed out once by the identity: two customer ids
-- never share a lease, whatever their hashes, and no customer id can name an
-- instance slot. fetches_started counts the fetches begun for the customer;
-- each fetch takes the next value as its ticket, committed durably, before it
-- sends its request (etl/load/fencing_sql.hpp).
CREATE TABLE sync_customers (
    customer_id     text COLLATE "C" NOT NULL,
    lease_key       integer GENERATED ALWAYS AS IDENTITY,
    fetches_started bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id)
);

-- fetch_ticket: the ticket of the fetch whose load the window committed last.
-- A load whose fetch took a lower ticket began before that one: it is dropped,
-- so an older response never overwrites a newer one.
ALTER TABLE sync_windows ADD COLUMN fetch_ticket bigint;
