/*
 * Per-image encryption: HKDF-SHA256 from a master key, AES-256-GCM.
 *
 * At startup each master key is reduced to a pseudo-random key once
 * (HKDF-Extract). Per image:
 *
 *   key   = HKDF-Expand(prk, "imgstore v1 key" || key_id (u16 BE) || token, 32)
 *   nonce = 12 random bytes (stored, although each key seals one message only)
 *   ct    = AES-256-GCM(key, nonce, plaintext, aad) || tag (16 bytes)
 *
 * Associated data binds the row's metadata, so a row whose type, expiry,
 * id or key id was altered in the database fails to open:
 *
 *   +-----+-----------+-------------+-------+-------------+--------------------+
 *   | ver | key_id    | id          | tlen  | type        | expires_at         |
 *   | 1 B | u16 BE    | 32 B        | 1 B   | tlen bytes  | i64 BE, epoch secs |
 *   +-----+-----------+-------------+-------+-------------+--------------------+
 *
 * Core unit: libc, APR and OpenSSL only.
 */
#ifndef IMGSTORE_CRYPT_H
#define IMGSTORE_CRYPT_H

#include <apr_pools.h>

#include <openssl/types.h>

#include "imgstore_status.h"
#include "imgstore_token.h"

#define IMGSTORE_MASTER_KEY_BYTES 32
#define IMGSTORE_NONCE_BYTES 12
#define IMGSTORE_TAG_BYTES 16
#define IMGSTORE_AAD_VERSION 1
#define IMGSTORE_KEY_ID_MAX 32767
#define IMGSTORE_CRYPT_KEY_BYTES 32

typedef struct imgstore_keyring_t imgstore_keyring_t;

typedef struct {
    int key_id;
    const unsigned char *id; /* IMGSTORE_ID_BYTES */
    const char *content_type;
    apr_int64_t expires_at;
} imgstore_aad_t;

/* The keyring wipes its key material when p is cleared. NULL if OpenSSL lacks HKDF or GCM. */
imgstore_keyring_t *imgstore_keyring_create(apr_pool_t *p);

/* HKDF-Extract the master key under key_id (1..IMGSTORE_KEY_ID_MAX); NULL or a reason. */
const char *imgstore_keyring_add(imgstore_keyring_t *kr, int key_id,
                                 const unsigned char master[IMGSTORE_MASTER_KEY_BYTES]);

int imgstore_keyring_has(const imgstore_keyring_t *kr, int key_id);
int imgstore_keyring_count(const imgstore_keyring_t *kr);

/*
 * Encrypt buf[0..len) in place under the key aad->key_id and write the tag
 * at buf + len (the buffer must hold len + IMGSTORE_TAG_BYTES).
 * IMGSTORE_OK, IMGSTORE_NOKEY (unknown key id) or IMGSTORE_INTERNAL.
 */
imgstore_status_e imgstore_crypt_seal(const imgstore_keyring_t *kr,
                                      const unsigned char token[IMGSTORE_TOKEN_BYTES],
                                      const imgstore_aad_t *aad,
                                      unsigned char nonce[IMGSTORE_NONCE_BYTES], unsigned char *buf,
                                      apr_size_t len);

/*
 * Decrypt ct (ct_len includes the trailing tag) into out (ct_len -
 * IMGSTORE_TAG_BYTES bytes; out may equal ct). Nothing in out may be used
 * unless IMGSTORE_OK: IMGSTORE_NOKEY (unknown key id), IMGSTORE_TAMPERED (too
 * short or the tag did not verify) or IMGSTORE_INTERNAL.
 */
imgstore_status_e
imgstore_crypt_open(const imgstore_keyring_t *kr, const unsigned char token[IMGSTORE_TOKEN_BYTES],
                    const imgstore_aad_t *aad, const unsigned char nonce[IMGSTORE_NONCE_BYTES],
                    const unsigned char *ct, apr_size_t ct_len, unsigned char *out);

/*
 * The primitives both sealing formats (v1 here, v2 in imgstore_expkey.c) use.
 *
 * HKDF-SHA256 in one of OpenSSL's EVP_KDF_HKDF_MODE_* modes, 32 bytes out:
 * key is the IKM (extract modes) or the PRK (expand only); salt and info may
 * be NULL. 1 on success, 0 on failure.
 */
int imgstore_crypt_hkdf(EVP_KDF *kdf, int mode, const unsigned char *key, size_t key_len,
                        const unsigned char *salt, size_t salt_len, const unsigned char *info,
                        size_t info_len, unsigned char out[IMGSTORE_CRYPT_KEY_BYTES]);

/*
 * One AES-256-GCM pass of cipher (a fetched "AES-256-GCM") over in[0..len)
 * into out (may equal in), with aad as associated data. enc writes the tag,
 * !enc checks it: IMGSTORE_OK, IMGSTORE_TAMPERED (the tag did not verify) or
 * IMGSTORE_INTERNAL. On failure out must not be used.
 */
imgstore_status_e imgstore_crypt_gcm(const EVP_CIPHER *cipher, int enc,
                                     const unsigned char key[IMGSTORE_CRYPT_KEY_BYTES],
                                     const unsigned char nonce[IMGSTORE_NONCE_BYTES],
                                     const unsigned char *aad, size_t aad_len,
                                     const unsigned char *in, apr_size_t len, unsigned char *out,
                                     unsigned char tag[IMGSTORE_TAG_BYTES]);

#endif
