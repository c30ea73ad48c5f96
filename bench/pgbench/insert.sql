-- Database ceiling for uploads: one INSERT of an image-sized row into the module's
-- own table (same constraints, indexes, TOAST settings), as the module does with
-- one statement per upload. The ciphertext comes from bench_payload (random bytes
-- of the module's ciphertext length for this size: image + 16-byte tag), so the
-- server stores incompressible data of the right size; unlike the module, the
-- bytes are not sent over the socket. key_id 32000 marks rows made by the bench.
-- Variables (pgbench -D): size_class, variants.
\set k random(1, :variants)
INSERT INTO imgstore_images
    (id, key_id, nonce, ciphertext, content_type, size, created_at, expires_at)
SELECT sha256(int8send(nextval('bench_seq'))), 32000, substr(p.data, 1, 12), p.data,
       'image/jpeg', octet_length(p.data) - 16, 1700000000, 4102444800
  FROM bench_payload p
 WHERE p.size_class = :size_class AND p.k = :k;
