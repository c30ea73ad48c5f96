-- Database ceiling for retrieval: the module's own fetch statement (same columns,
-- same WHERE) against rows of the right size that the bench inserted with
-- id = sha256(int8send(n)) for n in [first, last]. pgbench asks for results in
-- text format, so the server sends the ciphertext hex-encoded (twice the bytes);
-- the module asks for binary.
-- Variables (pgbench -D): first, last.
\set n random(:first, :last)
SELECT key_id, nonce, ciphertext, content_type, size, created_at, expires_at
  FROM imgstore_images
 WHERE id = sha256(int8send(:n::bigint)) AND expires_at > 1700000000
   AND octet_length(ciphertext) <= 10485776;
