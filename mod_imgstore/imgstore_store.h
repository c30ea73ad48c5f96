/*
 * The module's SQL, run with libpq on a PostgreSQL connection borrowed from
 * mod_dbd (apr_dbd_native_handle): bound parameters, binary in and binary
 * out, so bytea crosses the wire once, not hex-doubled; no SQL built from
 * strings. Uploads and retrievals run named statements that survive
 * connection resets (imgstore_stmt.h); the rest (cleanup, checks) runs
 * unnamed, some of it inside transactions.
 *
 * Core unit: libc, APR and libpq only. DDL lives in sql/, never here.
 */
#ifndef IMGSTORE_STORE_H
#define IMGSTORE_STORE_H

#include <apr_pools.h>
#include <libpq-fe.h>

#include "imgstore_crypt.h"
#include "imgstore_status.h"

/* The schema version this build of the module needs (see sql/). */
#define IMGSTORE_SCHEMA_VERSION 3

/*
 * The largest piece of an image that crosses libpq in one message, each
 * way: libpq's buffers grow to the largest message and never shrink, so
 * these bound what every pooled connection keeps (about 256 KiB each way)
 * whatever the image size. Larger images are copied in by CHUNK and read
 * out by SLICE.
 */
#define IMGSTORE_STORE_SLICE (256 * 1024 - 1024)
#define IMGSTORE_STORE_CHUNK (64 * 1024 - 1024)

/* One stored image. On fetch the pointers point into the PGresult. */
typedef struct {
    const unsigned char *id; /* IMGSTORE_ID_BYTES */
    int key_id;
    const unsigned char *nonce; /* IMGSTORE_NONCE_BYTES */
    const unsigned char *ciphertext;
    apr_size_t ciphertext_len; /* image size + IMGSTORE_TAG_BYTES */
    const char *content_type;
    apr_int64_t size;
    apr_int64_t created_at;
    apr_int64_t expires_at;
    apr_int64_t views_left;           /* 0: no view limit */
    const unsigned char *delete_hash; /* IMGSTORE_ID_BYTES; on insert only (fetch: NULL) */
    apr_int64_t expiry_period;        /* the expiry-key period of a v2 row; -1: a v1 row (NULL) */
} imgstore_row_t;

/*
 * Insert one row (committed when it returns OK): one INSERT when the
 * ciphertext fits IMGSTORE_STORE_SLICE, else a COPY stream. With
 * max_total > 0, the running total in imgstore_state is raised in the same
 * transaction, and QUOTA is returned (nothing stored) when it would pass
 * max_total.
 */
imgstore_status_e imgstore_store_insert(PGconn *conn, apr_pool_t *p, const imgstore_row_t *row,
                                        apr_int64_t max_total, const char **err);

/*
 * What a fetch holds: the result, and the ciphertext when it took more than
 * one slice (or came from the cache).
 */
typedef struct {
    PGresult *res;
    unsigned char *buf; /* from imgstore_bigbuf_get(), or NULL: the ciphertext is in res */
    apr_size_t used;    /* the bytes of buf written */
} imgstore_fetched_t;

/* Free what a fetch holds (either member may be NULL already). */
void imgstore_store_fetched_free(imgstore_fetched_t *f);

/*
 * Find the live row with this id: expires_at > now and a ciphertext no larger
 * than max_ciphertext (so a tampered row cannot blow up memory); a
 * ciphertext over IMGSTORE_STORE_SLICE is read in slices. On OK the row points into *f, which the
 * caller frees with imgstore_store_fetched_free(); row->ciphertext is writable.
 * NOTFOUND also when the row is deleted between slices; TAMPERED for a row
 * no upload makes (a NULL column, a nonce or value of the wrong length).
 */
imgstore_status_e imgstore_store_fetch(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                       apr_int64_t now, apr_int64_t max_ciphertext,
                                       imgstore_fetched_t *f, imgstore_row_t *row,
                                       const char **err);

/*
 * User controls (sql/002). Spend one view of the live row with this id; the
 * last view deletes the row in the same statement. OK with *left = the
 * views that remain (0: the row is gone now), NOTFOUND when no view was
 * left to spend (used up, deleted or expired meanwhile).
 */
imgstore_status_e imgstore_store_spend_view(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                            apr_int64_t now, apr_int64_t *left, const char **err);

/*
 * The delete-token hash of the live row with this id: OK with *has_hash set
 * (0 for a row stored without one), or NOTFOUND. hash holds IMGSTORE_ID_BYTES.
 */
imgstore_status_e imgstore_store_delete_hash(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                             apr_int64_t now, unsigned char *hash, int *has_hash,
                                             const char **err);

/* Delete the row with this id and delete-token hash: OK, or NOTFOUND when it is gone. */
imgstore_status_e imgstore_store_delete(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                        const unsigned char *hash, const char **err);

/*
 * The hot cache's check (mod_imgstore_cache.h): whether the row with this
 * id is live at now, without reading its ciphertext. OK or NOTFOUND.
 */
imgstore_status_e imgstore_store_confirm(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                         apr_int64_t now, const char **err);

/* The schema version recorded by the migrations (SCHEMA if the tables are missing). */
imgstore_status_e imgstore_store_schema_version(PGconn *conn, apr_pool_t *p, int *version,
                                                const char **err);

/*
 * Claim this interval's cleanup pass for all hosts sharing the database:
 * OK when this caller won, NOTFOUND when another pass ran less than
 * interval - slack seconds ago. A last run stamped in the future heals itself.
 * force records a pass unconditionally (GET /cleanup).
 */
imgstore_status_e imgstore_store_claim_cleanup(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                               apr_int64_t interval, int force, const char **err);

/*
 * Told, after a cleanup batch's COMMIT (never for one rolled back), the ids
 * (IMGSTORE_ID_BYTES each, valid during the call) of the n rows it deleted,
 * so a cache can drop them.
 */
typedef void (*imgstore_store_gone_fn)(void *ctx, const unsigned char *const *ids, int n);

/* One cleanup pass's deleting: its bounds in, what it did out. */
typedef struct {
    int rows;              /* most rows per batch */
    apr_int64_t bytes;     /* most bytes (sum of size) per batch, past its first row */
    apr_int64_t budget_ms; /* the pass's time; each batch may take a third of it (at most 10 s) */
    const int *stop;       /* set by another thread: end after the batch in hand; may be NULL */
    int next_rows;         /* in and out: the batch size to start with (0: rows); learned */
    apr_int64_t deleted;   /* out: rows removed, even when an error ends the pass */
    int skipped;           /* out: rows that could not be deleted in time in a batch of their own */
    int backlog;           /* out: the budget or stop ended the pass, not the lack of rows */
    imgstore_store_gone_fn gone; /* optional (NULL: none), called with gone_ctx */
    void *gone_ctx;
} imgstore_store_purge_t;

/*
 * Delete rows expired at now, oldest first, in batches bounded by rows,
 * bytes and time (statement and lock timeouts), until none is left, the
 * budget has passed or *stop is set. Each batch is its own transaction. A
 * batch that times out is retried from one row, growing by doubling after
 * each success; a single row that still times out is stepped over, so the
 * pass always progresses past it (a later pass tries it again).
 */
imgstore_status_e imgstore_store_delete_expired(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                                imgstore_store_purge_t *pu, const char **err);

/*
 * How long the oldest expired row still stored has been expired, in seconds
 * (0 when none is): a cleanup that falls behind shows here.
 */
imgstore_status_e imgstore_store_oldest_expired_age(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                                    apr_int64_t *age, const char **err);

/* Recompute the running total of live bytes (used with ImgStoreMaxTotal). */
imgstore_status_e imgstore_store_recount(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                         apr_int64_t *total, const char **err);

#define IMGSTORE_STORE_LINEAGE_BYTES 32

/*
 * The expiry-key chain of the database (sql/003): records lineage if no
 * host has yet, and returns the lineage recorded (which differs from
 * lineage when this host's expiry-key file belongs to another chain).
 */
imgstore_status_e imgstore_store_lineage(PGconn *conn, apr_pool_t *p,
                                         const unsigned char lineage[IMGSTORE_STORE_LINEAGE_BYTES],
                                         apr_int64_t now,
                                         unsigned char stored[IMGSTORE_STORE_LINEAGE_BYTES],
                                         const char **err);

#endif
