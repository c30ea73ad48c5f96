/*
 * The module's SQL, run with libpq on a PostgreSQL connection borrowed from
 * mod_dbd (apr_dbd_native_handle). Every statement is PQexecParams with
 * bound parameters, binary in and binary out: no server-side named
 * statements (they vanish when mod_dbd resets a connection), no SQL built
 * from strings, and bytea crosses the wire once, not hex-doubled.
 *
 * Core unit: libc, APR and libpq only. DDL lives in sql/, never here.
 */
#ifndef IMGSTORE_STORE_H
#define IMGSTORE_STORE_H

#include <apr_pools.h>
#include <libpq-fe.h>

#include "imgstore_crypt.h"

/* The schema version this build of the module needs (see sql/). */
#define IMGSTORE_SCHEMA_VERSION 1

typedef enum {
    IMGSTORE_STORE_OK = 0,
    IMGSTORE_STORE_NOTFOUND,  /* no live row, or nothing claimed */
    IMGSTORE_STORE_QUOTA,     /* the insert would pass ImgStoreMaxTotal */
    IMGSTORE_STORE_CONN,      /* the connection is broken: retry once on a fresh one */
    IMGSTORE_STORE_SCHEMA,    /* tables missing or older than IMGSTORE_SCHEMA_VERSION */
    IMGSTORE_STORE_DUPLICATE, /* the id exists already (a retried insert that had committed) */
    IMGSTORE_STORE_ERROR      /* any other database error */
} imgstore_store_status_e;

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
} imgstore_row_t;

/*
 * Insert one row in one statement (committed when it returns OK). With
 * max_total > 0, the running total in imgstore_state is raised in the same
 * statement, and QUOTA is returned when it would pass max_total.
 */
imgstore_store_status_e imgstore_store_insert(PGconn *conn, apr_pool_t *p,
                                              const imgstore_row_t *row, apr_int64_t max_total,
                                              const char **err);

/*
 * Find the live row with this id: expires_at > now and a ciphertext no larger
 * than max_ciphertext (so a tampered row cannot blow up memory). On OK, *res
 * holds the result the row points into; the caller PQclear()s it.
 */
imgstore_store_status_e imgstore_store_fetch(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                             apr_int64_t now, apr_int64_t max_ciphertext,
                                             PGresult **res, imgstore_row_t *row, const char **err);

/* The schema version recorded by the migrations (SCHEMA if the tables are missing). */
imgstore_store_status_e imgstore_store_schema_version(PGconn *conn, apr_pool_t *p, int *version,
                                                      const char **err);

/*
 * Claim this interval's cleanup pass for all hosts sharing the database:
 * OK when this caller won, NOTFOUND when another pass ran less than
 * interval - slack seconds ago. A last run stamped in the future heals itself.
 * force records a pass unconditionally (GET /cleanup).
 */
imgstore_store_status_e imgstore_store_claim_cleanup(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                                     apr_int64_t interval, int force,
                                                     const char **err);

/*
 * Delete rows expired at now in batches of batch rows, until none is left
 * or budget_ms has passed; each batch is its own short transaction with
 * statement and lock timeouts. Concurrent passes skip each other's rows.
 * *deleted counts the rows removed even when an error ends the pass.
 */
imgstore_store_status_e imgstore_store_delete_expired(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                                      int batch, apr_int64_t budget_ms,
                                                      apr_int64_t *deleted, const char **err);

/*
 * How long the oldest expired row still stored has been expired, in seconds
 * (0 when none is): a cleanup that falls behind shows here.
 */
imgstore_store_status_e imgstore_store_oldest_expired_age(PGconn *conn, apr_pool_t *p,
                                                          apr_int64_t now, apr_int64_t *age,
                                                          const char **err);

/* Recompute the running total of live bytes (used with ImgStoreMaxTotal). */
imgstore_store_status_e imgstore_store_recount(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                               apr_int64_t *total, const char **err);

#endif
