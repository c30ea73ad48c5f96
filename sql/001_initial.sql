-- mod_imgstore schema, version 1.
-- Applied by sql/imgstore-migrate inside one transaction; never edit a
-- released migration, add the next number instead.

CREATE TABLE imgstore_images (
    -- SHA-256("imgstore v1 id" || token): the token itself is never stored.
    id           bytea    PRIMARY KEY CHECK (octet_length(id) = 32),
    key_id       smallint NOT NULL CHECK (key_id > 0),
    nonce        bytea    NOT NULL CHECK (octet_length(nonce) = 12),
    -- AES-256-GCM ciphertext followed by its 16-byte tag.
    ciphertext   bytea    NOT NULL CHECK (octet_length(ciphertext) >= 16),
    content_type text     NOT NULL CHECK (octet_length(content_type) BETWEEN 1 AND 64),
    size         bigint   NOT NULL CHECK (size >= 0),
    -- Epoch seconds from the module's clock (bound into the ciphertext's associated data).
    created_at   bigint   NOT NULL,
    expires_at   bigint   NOT NULL CHECK (expires_at > created_at),
    CHECK (octet_length(ciphertext) = size + 16)
) WITH (
    -- The table turns over completely every TTL: vacuum early and often.
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 500,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05,
    toast.autovacuum_vacuum_scale_factor = 0.02,
    toast.autovacuum_vacuum_threshold = 500
);

-- Ciphertext does not compress: do not make PostgreSQL try on every row.
ALTER TABLE imgstore_images ALTER COLUMN ciphertext SET STORAGE EXTERNAL;

-- Cleanup deletes by expiry in batches.
CREATE INDEX imgstore_images_expires_at ON imgstore_images (expires_at);

-- One row: schema version, the cleanup claim shared by every host, the quota's running total.
CREATE TABLE imgstore_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    schema_version integer NOT NULL,
    last_cleanup   bigint  NOT NULL DEFAULT 0,
    total_bytes    bigint  NOT NULL DEFAULT 0
);

INSERT INTO imgstore_state (schema_version) VALUES (1);
