/*
 * The sealed-image use case: what an upload becomes, and how a fetched row
 * becomes an image again. The associated data (imgstore_crypt.h) is built
 * here and nowhere else, from the same row fields both ways.
 *
 * Names: the token is the capability in the URL (never stored, never
 * logged); the id is its SHA-256, the row's key in the database.
 *
 * Core unit: libc, APR and OpenSSL only.
 */
#ifndef IMGSTORE_IMAGE_H
#define IMGSTORE_IMAGE_H

#include <apr_time.h>

#include "imgstore_crypt.h"
#include "imgstore_expkey.h"
#include "imgstore_sniff.h"
#include "imgstore_status.h"
#include "imgstore_store.h"
#include "imgstore_token.h"

/* An upload, sealed: the token for the client and the row for the database. */
typedef struct {
    unsigned char token[IMGSTORE_TOKEN_BYTES]; /* the capability: goes into the URL only */
    unsigned char id[IMGSTORE_ID_BYTES];       /* SHA-256 of the token: the row's key */
    unsigned char nonce[IMGSTORE_NONCE_BYTES];
    unsigned char delete_token[IMGSTORE_TOKEN_BYTES]; /* for the uploader only */
    unsigned char delete_hash[IMGSTORE_ID_BYTES];     /* what the row keeps of it */
    imgstore_row_t row; /* points into this struct and into the sealed buffer */
} imgstore_sealed_t;

/*
 * Expiry keys (imgstore_expkey.h): with a chain, uploads are sealed in
 * format v2 under the secret of the period their expiry falls in, and the
 * row records that period; without one (NULL), in format v1. Rows of
 * either format open while their period's secret is held.
 */
typedef struct {
    const imgstore_expkey_keys_t *keys; /* PRK_m per key id */
    imgstore_expkey_window_t *window;   /* the secrets this process still holds */
} imgstore_image_chain_t;

/* A fresh token and its id, and a delete token: OK, or INTERNAL when the CSPRNG failed. */
imgstore_status_e imgstore_image_new(imgstore_sealed_t *sealed);

/*
 * Seal buf[0..len) in place (buf holds len + IMGSTORE_TAG_BYTES) as an image
 * of this type under key_id, for ttl seconds from now, with the token of
 * imgstore_image_new(): the expiry (rounded up to the second, so an image
 * lives at least its TTL) and the row to insert; with a chain, in format v2
 * under the period of the expiry (row->expiry_period). OK; NOKEY (unknown
 * key id); NOTFOUND (the expiry is beyond the chain's window); INTERNAL
 * (OpenSSL failed); the token is wiped unless OK. Wipe the token with imgstore_image_wipe()
 * once it has been handed out.
 */
imgstore_status_e imgstore_image_seal(imgstore_sealed_t *sealed, const imgstore_keyring_t *kr,
                                      const imgstore_image_chain_t *chain, int key_id,
                                      imgstore_type_e type, apr_time_t now, apr_int64_t ttl,
                                      unsigned char *buf, apr_size_t len);

/* Wipe the tokens and the id of a sealed image. */
void imgstore_image_wipe(imgstore_sealed_t *sealed);

/*
 * Open a fetched row in place (row->ciphertext is writable) with the token
 * whose id found it, then check what is authenticated now: the expiry
 * against the clock (epoch seconds) and the type. A v2 row (expiry_period
 * set) needs the chain and its period's secret. OK: row->ciphertext
 * holds *plain_len bytes of the image. NOTFOUND: expired since, not a
 * type this module serves, or its period's secret is erased (or no chain). NOKEY: sealed under a
 * key id no key file provides. TAMPERED: the tag did not verify (the row was altered or the key is
 * wrong). INTERNAL: OpenSSL failed. *plain_len is set in every case: the bytes that may hold
 * plaintext and must be wiped.
 */
imgstore_status_e imgstore_image_open(const imgstore_keyring_t *kr,
                                      const imgstore_image_chain_t *chain,
                                      const unsigned char token[IMGSTORE_TOKEN_BYTES],
                                      const unsigned char id[IMGSTORE_ID_BYTES],
                                      const imgstore_row_t *row, apr_int64_t now,
                                      apr_size_t *plain_len);

#endif
