/*
 * Streaming multipart/form-data parser (RFC 7578) for one upload.
 *
 * Core unit: libc + APR only. Bytes are fed in arbitrary pieces (a boundary
 * may be split at any offset between two feeds); the parser keeps the data of
 * the single part named "file" in one growing buffer and discards every other
 * part. Limits are enforced while streaming, never after the fact.
 */
#ifndef IMGSTORE_MULTIPART_H
#define IMGSTORE_MULTIPART_H

#include "imgstore_status.h"
#include <apr_pools.h>

typedef enum {
    IMGSTORE_MP_OK = 0,             /* more input welcome */
    IMGSTORE_MP_DONE,               /* closing boundary seen; further input is epilogue */
    IMGSTORE_MP_ERR_MALFORMED,      /* syntax error (no opening boundary, bad part header...) */
    IMGSTORE_MP_ERR_HEADER_TOO_BIG, /* one part's header block exceeds max_header_bytes */
    IMGSTORE_MP_ERR_TOO_MANY_PARTS,
    IMGSTORE_MP_ERR_NO_FILE,      /* at finish: no part named "file" */
    IMGSTORE_MP_ERR_DUP_FILE,     /* a second part named "file" */
    IMGSTORE_MP_ERR_FILE_TOO_BIG, /* the file part exceeds max_file_bytes */
    IMGSTORE_MP_ERR_TRUNCATED,    /* at finish: input ended before the closing boundary */
    IMGSTORE_MP_ERR_NOMEM
} imgstore_mp_status_e;

typedef struct {
    apr_size_t max_file_bytes;   /* largest accepted "file" part */
    apr_size_t max_header_bytes; /* largest header block of one part (default 8192) */
    int max_parts;               /* most parts in one body (default 16) */
    apr_size_t size_hint;        /* expected file size (e.g. Content-Length), 0 if unknown */
    apr_size_t tailroom;         /* spare bytes kept after the file data (room for a GCM tag) */
} imgstore_mp_limits_t;

typedef struct imgstore_multipart_t imgstore_multipart_t;

/* Longest boundary RFC 2046 allows. */
#define IMGSTORE_MP_BOUNDARY_MAX 70

/*
 * Extract the boundary parameter from a Content-Type header value.
 * Returns NULL and sets *boundary when the value is multipart/form-data
 * (case-insensitive, parameters in any order, quoted or token boundary,
 * 1..70 characters); otherwise returns a short human-readable reason.
 */
const char *imgstore_multipart_boundary(apr_pool_t *p, const char *content_type,
                                        const char **boundary);

/*
 * The parser and its file buffer live until pool p is cleared; the buffer is
 * malloc'd (starting from size_hint but at most 64 KiB, grown by doubling as bytes
 * arrive), wiped as far as it was written and freed by a cleanup on p.
 * Never returns NULL: a boundary that is empty, longer than 70 bytes or holds
 * CR/LF yields a parser that answers MALFORMED. limits may be NULL (defaults;
 * max_file_bytes is taken literally, so 0 admits only an empty file).
 * Part headers must end in CRLF: bare LF or CR there is MALFORMED.
 */
imgstore_multipart_t *imgstore_multipart_create(apr_pool_t *p, const char *boundary,
                                                const imgstore_mp_limits_t *limits);

/* Feed the next piece of the body. Once an error is returned, it is returned forever. */
imgstore_mp_status_e imgstore_multipart_feed(imgstore_multipart_t *mp, const char *data,
                                             apr_size_t len);

/*
 * End of input: DONE if the body was complete and held exactly one "file" part.
 * Input that ended early is TRUNCATED (empty input included), except a
 * non-empty preamble never followed by a boundary, which is MALFORMED.
 * The verdict is sticky, like feed() errors.
 */
imgstore_mp_status_e imgstore_multipart_finish(imgstore_multipart_t *mp);

/*
 * The file part's bytes (valid after finish returned DONE). The buffer is
 * writable and has at least limits->tailroom bytes of capacity after *len,
 * so the caller may encrypt in place and append a tag.
 */
unsigned char *imgstore_multipart_file(imgstore_multipart_t *mp, apr_size_t *len);

/*
 * The filename parameter of the file part, or NULL: informative only, never trusted.
 * Quoted-string escapes are decoded; filename* is ignored; path parts are left as sent.
 */
const char *imgstore_multipart_filename(imgstore_multipart_t *mp);

/* Longest value of a small field that is kept. */
#define IMGSTORE_MP_FIELD_MAX 64

typedef enum {
    IMGSTORE_MP_FIELD_ABSENT = 0,
    IMGSTORE_MP_FIELD_OK,
    IMGSTORE_MP_FIELD_BAD /* sent twice, longer than IMGSTORE_MP_FIELD_MAX, or holds a NUL */
} imgstore_mp_field_e;

/*
 * The value of the small field (a part without a filename, other than
 * "file") called name, valid after finish returned DONE: *value is a
 * NUL-terminated copy for IMGSTORE_MP_FIELD_OK, NULL otherwise. The first
 * max_parts such parts are kept; names are compared exactly.
 */
imgstore_mp_field_e imgstore_multipart_field(imgstore_multipart_t *mp, const char *name,
                                             const char **value);

/* A short human-readable text for a status, suitable for a JSON error answer. */
const char *imgstore_multipart_strerror(imgstore_mp_status_e status);

/* The parser state in the core's convention (imgstore_status.h). */
imgstore_status_e imgstore_multipart_status(imgstore_mp_status_e status);

#endif
