/*
 * The sealed row as the hot image cache (ImgStoreCache, mod_socache) holds
 * it: what imgstore_image_open() needs to open it again, and nothing more.
 * Never the token and never plaintext: the ciphertext stays sealed, and the
 * id is the cache key, not part of the value.
 *
 * Layout, big-endian: "ISC1", key_id (2), nonce (12), created_at (8),
 * expires_at (8), size (8), expiry_period (8, -1 for a v1 row), flags (1:
 * bit 0 = the image has a view limit), content type length (1), content
 * type and a NUL,
 * ciphertext length (4), ciphertext (size + IMGSTORE_TAG_BYTES).
 *
 * Core unit: libc and APR only.
 */
#ifndef IMGSTORE_CACHEROW_H
#define IMGSTORE_CACHEROW_H

#include "imgstore_status.h"
#include "imgstore_store.h"

/* The encoded size of a row: 0 when it cannot be encoded (content type too long, size mismatch). */
apr_size_t imgstore_cacherow_size(const imgstore_row_t *row);

/* Encode row into out, which holds imgstore_cacherow_size(row) bytes; returns that size (0: not
 * encodable). */
apr_size_t imgstore_cacherow_encode(const imgstore_row_t *row, unsigned char *out, apr_size_t cap);

/*
 * Decode buf[0..len) into row, pointing into buf (row->ciphertext is
 * writable, for opening in place); row->id is set to id; row->views_left is
 * 1 for an image with a view limit (how many are left is the database's
 * to say) and 0 without; no delete_hash. OK, or ERROR when
 * the value is not a complete, consistent cached row.
 */
imgstore_status_e imgstore_cacherow_decode(unsigned char *buf, apr_size_t len,
                                           const unsigned char *id, imgstore_row_t *row);

#endif
