-- mod_imgstore schema, version 3: expiry keys (README "Security model").

-- The expiry-key period a row is sealed under (format v2); NULL: a row
-- sealed before expiry keys (format v1), which opens until it expires.
ALTER TABLE imgstore_images ADD COLUMN expiry_period bigint CHECK (expiry_period >= 0);

-- The one chain every host sharing this database uses: the lineage id of
-- its expiry-key file, SHA-256("imgstore v2 lineage" || first secret). One
-- way: it tells chains apart and reveals nothing of any secret. The first
-- host to connect records it; a host whose file has another lineage is
-- refused until it uses a copy of the same file.
CREATE TABLE imgstore_expiry_chain (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    lineage    bytea   NOT NULL CHECK (octet_length(lineage) = 32),
    created_at bigint  NOT NULL
);
