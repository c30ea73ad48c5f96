/*
 * The core's one error convention: a function that can fail returns an
 * imgstore_status_e, and, where a person needs to know why, sets a reason
 * string through a `const char **why` (or `err`) argument: static text or
 * pool memory, never NULL when the status is not IMGSTORE_OK. The core
 * never logs and never picks an HTTP status: the glue logs the reason and
 * maps the status to HTTP in one place (mod_imgstore_response.c).
 *
 * Used by store, crypt, token, image and sweep. Three kinds of function
 * keep a plainer answer, because they have nothing else to say: parsers of
 * a value return NULL or their reason (imgstore_value.h, imgstore_keyfile.h,
 * imgstore_keyring_add, imgstore_multipart_boundary), predicates return 1 or 0
 * (imgstore_token_decode), and the multipart parser keeps its own states
 * (more input, done, which error) for its caller, with
 * imgstore_multipart_status() saying what they mean here.
 *
 * Core unit: no dependency at all.
 */
#ifndef IMGSTORE_STATUS_H
#define IMGSTORE_STATUS_H

typedef enum {
    IMGSTORE_OK = 0,
    IMGSTORE_NOTFOUND,  /* no live row (or nothing claimed); an image expired or unknown */
    IMGSTORE_QUOTA,     /* the insert would pass ImgStoreMaxTotal */
    IMGSTORE_CONN,      /* the connection is broken: retry once on a fresh one */
    IMGSTORE_SCHEMA,    /* tables missing or older than IMGSTORE_SCHEMA_VERSION */
    IMGSTORE_DUPLICATE, /* the id exists already (a retried insert that had committed) */
    IMGSTORE_ERROR,     /* any other database error */
    IMGSTORE_INVALID,   /* the client's bytes are malformed */
    IMGSTORE_TOO_LARGE, /* the client's image or body is over the limit */
    IMGSTORE_BAD_TYPE,  /* not an image type this mount accepts */
    IMGSTORE_NOKEY,     /* sealed under a key id no key file provides */
    IMGSTORE_TAMPERED,  /* the authentication tag did not verify */
    IMGSTORE_INTERNAL   /* out of memory, the CSPRNG or OpenSSL failed */
} imgstore_status_e;

#endif
