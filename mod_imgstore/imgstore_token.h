/*
 * The capability token and the database lookup id derived from it.
 *
 *   token  = 32 bytes from the OS CSPRNG (never stored, never logged)
 *   text   = base64url(token) without padding: 43 characters, canonical;
 *            the token as it appears in the URL (/image/<text>) and in the
 *            upload answer's "hash" field (a name kept for API stability)
 *   id     = SHA-256("imgstore v1 id" || token): the row's primary key
 *
 * Whoever holds the token can read the image; the id, which is all the
 * database ever sees, cannot be turned back into the token.
 *
 * Core unit: libc, APR and OpenSSL only.
 */
#ifndef IMGSTORE_TOKEN_H
#define IMGSTORE_TOKEN_H

#include <apr.h>
#include <apr_errno.h>

#include "imgstore_status.h"

#define IMGSTORE_TOKEN_BYTES 32
#define IMGSTORE_TOKEN_CHARS 43
#define IMGSTORE_ID_BYTES 32

/* Fill token with fresh random bytes; IMGSTORE_OK, or IMGSTORE_INTERNAL if the CSPRNG failed. */
imgstore_status_e imgstore_token_new(unsigned char token[IMGSTORE_TOKEN_BYTES]);

/* base64url without padding, NUL-terminated (out has IMGSTORE_TOKEN_CHARS + 1 bytes). */
void imgstore_token_encode(const unsigned char token[IMGSTORE_TOKEN_BYTES],
                           char out[IMGSTORE_TOKEN_CHARS + 1]);

/*
 * Decode a token's text of exactly IMGSTORE_TOKEN_CHARS base64url characters
 * whose unused low bits are zero (so each token has exactly one spelling).
 * Returns 1 on success, 0 for anything else.
 */
int imgstore_token_decode(const char *text, apr_size_t len,
                          unsigned char token[IMGSTORE_TOKEN_BYTES]);

/* id = SHA-256("imgstore v1 id" || token) */
void imgstore_token_id(const unsigned char token[IMGSTORE_TOKEN_BYTES],
                       unsigned char id[IMGSTORE_ID_BYTES]);

/*
 * The delete token (a second 32-byte random token, handed to the uploader)
 * is stored only as SHA-256("imgstore v1 delete" || delete token).
 */
void imgstore_token_delete_hash(const unsigned char token[IMGSTORE_TOKEN_BYTES],
                                unsigned char hash[IMGSTORE_ID_BYTES]);

#endif
