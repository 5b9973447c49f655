-- One row per tenant that has needed a lock: a transaction that checks, then writes, for a
-- tenant (at most 25 webhook endpoints; one first admin) upserts its row first, which holds
-- the other such transactions of that tenant until it ends.
CREATE TABLE warble_tenants (
    tenant TEXT PRIMARY KEY
);
