#include "imgstore_store.h"

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); stable across versions. */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_TEXT 25

#define FORMAT_TEXT 0
#define FORMAT_BINARY 1

static const char sql_insert[] =
    "INSERT INTO imgstore_images"
    " (id, key_id, nonce, ciphertext, content_type, size, created_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/* The quota is taken under the state row's lock, so concurrent uploads cannot overshoot it. */
static const char sql_insert_quota[] =
    "WITH quota AS (UPDATE imgstore_state SET total_bytes = total_bytes + $6"
    "  WHERE total_bytes + $6 <= $9 RETURNING 1)"
    " INSERT INTO imgstore_images"
    " (id, key_id, nonce, ciphertext, content_type, size, created_at, expires_at)"
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM quota";

static const char sql_fetch[] =
    "SELECT key_id, nonce, ciphertext, content_type, size, created_at, expires_at"
    " FROM imgstore_images"
    " WHERE id = $1 AND expires_at > $2 AND octet_length(ciphertext) <= $3";

static const char sql_schema_version[] = "SELECT schema_version FROM imgstore_state";

/* $3 is the slack that lets a timer firing a little early still win its own interval. */
static const char sql_claim[] = "UPDATE imgstore_state SET last_cleanup = $1"
                                " WHERE last_cleanup <= $1 - $2 + $3 OR last_cleanup > $1 + $2";

static const char sql_claim_force[] = "UPDATE imgstore_state SET last_cleanup = $1";

static const char sql_batch_begin[] =
    "BEGIN; SET LOCAL statement_timeout = '10s'; SET LOCAL lock_timeout = '2s'";

static const char sql_delete_batch[] =
    "WITH gone AS (DELETE FROM imgstore_images WHERE id IN"
    "  (SELECT id FROM imgstore_images WHERE expires_at <= $1"
    "   ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1)"
    " SELECT count(*) FROM gone";

/* Served by the expiry index: one row from its low end. */
static const char sql_oldest_expiry[] = "SELECT min(expires_at) FROM imgstore_images";

static const char sql_recount[] =
    "UPDATE imgstore_state SET total_bytes ="
    " (SELECT coalesce(sum(size), 0) FROM imgstore_images WHERE expires_at > $1)"
    " RETURNING total_bytes";

/* Network byte order for binary parameters and results. */
static void put_be64(unsigned char out[8], apr_int64_t v)
{
    apr_uint64_t u = (apr_uint64_t)v;
    int i;

    for (i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
}

static apr_int64_t get_be64(const unsigned char *in)
{
    apr_uint64_t u = 0;
    int i;

    for (i = 0; i < 8; i++) {
        u = (u << 8) | in[i];
    }
    return (apr_int64_t)u;
}

/* Map a failed statement to what the caller can do about it. */
static imgstore_store_status_e classify(PGconn *conn, apr_pool_t *p, const PGresult *res,
                                        const char **err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;

    if (msg == NULL || *msg == '\0') {
        msg = PQerrorMessage(conn);
    }
    *err = apr_pstrdup(p, msg ? msg : "unknown database error");
    if (PQstatus(conn) == CONNECTION_BAD || state == NULL) {
        return IMGSTORE_STORE_CONN;
    }
    /* Class 08 (connection exception), admin shutdown, crash shutdown, cannot connect now. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) {
        return IMGSTORE_STORE_CONN;
    }
    if (strcmp(state, "23505") == 0) {
        return IMGSTORE_STORE_DUPLICATE;
    }
    /* Undefined table or column: the migrations have not been applied. */
    if (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0) {
        return IMGSTORE_STORE_SCHEMA;
    }
    return IMGSTORE_STORE_ERROR;
}

static PGresult *exec(PGconn *conn, const char *sql, int n, const Oid *types,
                      const char *const *values, const int *lengths, const int *formats)
{
    return PQexecParams(conn, sql, n, types, values, lengths, formats, FORMAT_BINARY);
}

imgstore_store_status_e imgstore_store_insert(PGconn *conn, apr_pool_t *p,
                                              const imgstore_row_t *row, apr_int64_t max_total,
                                              const char **err)
{
    static const Oid types[9] = {OID_BYTEA, OID_INT2, OID_BYTEA, OID_BYTEA, OID_TEXT,
                                 OID_INT8,  OID_INT8, OID_INT8,  OID_INT8};
    static const int formats[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    unsigned char key_id[2], size[8], created[8], expires[8], quota[8];
    const char *values[9];
    int lengths[9];
    imgstore_store_status_e st = IMGSTORE_STORE_OK;
    PGresult *res;
    int n = max_total > 0 ? 9 : 8;

    key_id[0] = (unsigned char)(row->key_id >> 8);
    key_id[1] = (unsigned char)(row->key_id & 0xff);
    put_be64(size, row->size);
    put_be64(created, row->created_at);
    put_be64(expires, row->expires_at);
    put_be64(quota, max_total);
    values[0] = (const char *)row->id;
    lengths[0] = IMGSTORE_ID_BYTES;
    values[1] = (const char *)key_id;
    lengths[1] = 2;
    values[2] = (const char *)row->nonce;
    lengths[2] = IMGSTORE_NONCE_BYTES;
    values[3] = (const char *)row->ciphertext;
    lengths[3] = (int)row->ciphertext_len;
    values[4] = row->content_type;
    lengths[4] = (int)strlen(row->content_type);
    values[5] = (const char *)size;
    lengths[5] = 8;
    values[6] = (const char *)created;
    lengths[6] = 8;
    values[7] = (const char *)expires;
    lengths[7] = 8;
    values[8] = (const char *)quota;
    lengths[8] = 8;

    res = exec(conn, max_total > 0 ? sql_insert_quota : sql_insert, n, types, values, lengths,
               formats);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = classify(conn, p, res, err);
    } else if (strcmp(PQcmdTuples(res), "1") != 0) {
        st = IMGSTORE_STORE_QUOTA;
    }
    PQclear(res);
    return st;
}

imgstore_store_status_e imgstore_store_fetch(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                             apr_int64_t now, apr_int64_t max_ciphertext,
                                             PGresult **res, imgstore_row_t *row, const char **err)
{
    static const Oid types[3] = {OID_BYTEA, OID_INT8, OID_INT8};
    static const int formats[3] = {1, 1, 1};
    static const int expect_len[7] = {2, IMGSTORE_NONCE_BYTES, -1, -1, 8, 8, 8};
    unsigned char now_be[8], max_be[8];
    const char *values[3];
    int lengths[3] = {IMGSTORE_ID_BYTES, 8, 8};
    const unsigned char *v;
    int i;

    *res = NULL;
    put_be64(now_be, now);
    put_be64(max_be, max_ciphertext);
    values[0] = (const char *)id;
    values[1] = (const char *)now_be;
    values[2] = (const char *)max_be;

    *res = exec(conn, sql_fetch, 3, types, values, lengths, formats);
    if (PQresultStatus(*res) != PGRES_TUPLES_OK) {
        imgstore_store_status_e st = classify(conn, p, *res, err);
        PQclear(*res);
        *res = NULL;
        return st;
    }
    if (PQntuples(*res) != 1 || PQnfields(*res) != 7) {
        PQclear(*res);
        *res = NULL;
        return IMGSTORE_STORE_NOTFOUND;
    }
    for (i = 0; i < 7; i++) {
        if (PQgetisnull(*res, 0, i) ||
            (expect_len[i] >= 0 && PQgetlength(*res, 0, i) != expect_len[i])) {
            *err = "stored row has an unexpected shape";
            PQclear(*res);
            *res = NULL;
            return IMGSTORE_STORE_ERROR;
        }
    }
    v = (const unsigned char *)PQgetvalue(*res, 0, 0);
    row->id = id;
    row->key_id = (v[0] << 8) | v[1];
    row->nonce = (const unsigned char *)PQgetvalue(*res, 0, 1);
    row->ciphertext = (const unsigned char *)PQgetvalue(*res, 0, 2);
    row->ciphertext_len = (apr_size_t)PQgetlength(*res, 0, 2);
    /* Binary text is not NUL-terminated by contract; libpq does terminate every value. */
    row->content_type = PQgetvalue(*res, 0, 3);
    row->size = get_be64((const unsigned char *)PQgetvalue(*res, 0, 4));
    row->created_at = get_be64((const unsigned char *)PQgetvalue(*res, 0, 5));
    row->expires_at = get_be64((const unsigned char *)PQgetvalue(*res, 0, 6));
    return IMGSTORE_STORE_OK;
}

imgstore_store_status_e imgstore_store_schema_version(PGconn *conn, apr_pool_t *p, int *version,
                                                      const char **err)
{
    imgstore_store_status_e st = IMGSTORE_STORE_OK;
    PGresult *res = PQexecParams(conn, sql_schema_version, 0, NULL, NULL, NULL, NULL, FORMAT_TEXT);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else if (PQntuples(res) != 1) {
        *err = "imgstore_state holds no row";
        st = IMGSTORE_STORE_SCHEMA;
    } else {
        *version = atoi(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return st;
}

imgstore_store_status_e imgstore_store_claim_cleanup(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                                     apr_int64_t interval, int force,
                                                     const char **err)
{
    static const Oid types[3] = {OID_INT8, OID_INT8, OID_INT8};
    static const int formats[3] = {1, 1, 1};
    static const int lengths[3] = {8, 8, 8};
    unsigned char now_be[8], interval_be[8], slack_be[8];
    const char *values[3] = {(const char *)now_be, (const char *)interval_be,
                             (const char *)slack_be};
    imgstore_store_status_e st = IMGSTORE_STORE_OK;
    PGresult *res;

    put_be64(now_be, now);
    put_be64(interval_be, interval);
    /* A timer tick may land a little before a whole interval has passed (whole seconds). */
    put_be64(slack_be, interval >= 4 ? 2 : interval / 2);
    res = force ? exec(conn, sql_claim_force, 1, types, values, lengths, formats)
                : exec(conn, sql_claim, 3, types, values, lengths, formats);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = classify(conn, p, res, err);
    } else if (strcmp(PQcmdTuples(res), "1") != 0) {
        st = force ? IMGSTORE_STORE_SCHEMA : IMGSTORE_STORE_NOTFOUND;
        if (force) {
            *err = "imgstore_state holds no row";
        }
    }
    PQclear(res);
    return st;
}

/* Run a statement without parameters that returns no rows; OK or the classified error. */
static imgstore_store_status_e run_simple(PGconn *conn, apr_pool_t *p, const char *sql,
                                          const char **err)
{
    imgstore_store_status_e st = IMGSTORE_STORE_OK;
    PGresult *res = PQexec(conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = classify(conn, p, res, err);
    }
    PQclear(res);
    return st;
}

imgstore_store_status_e imgstore_store_delete_expired(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                                      int batch, apr_int64_t budget_ms,
                                                      apr_int64_t *deleted, const char **err)
{
    static const Oid types[2] = {OID_INT8, OID_INT8};
    static const int formats[2] = {1, 1};
    static const int lengths[2] = {8, 8};
    unsigned char now_be[8], batch_be[8];
    const char *values[2] = {(const char *)now_be, (const char *)batch_be};
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(budget_ms);
    imgstore_store_status_e st = IMGSTORE_STORE_OK;

    *deleted = 0;
    put_be64(now_be, now);
    put_be64(batch_be, batch);
    do {
        apr_int64_t n = 0;
        PGresult *res;

        st = run_simple(conn, p, sql_batch_begin, err);
        if (st != IMGSTORE_STORE_OK) {
            break;
        }
        res = exec(conn, sql_delete_batch, 2, types, values, lengths, formats);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
            PQgetlength(res, 0, 0) != 8) {
            st = classify(conn, p, res, err);
            PQclear(res);
            PQclear(PQexec(conn, "ROLLBACK"));
            break;
        }
        n = get_be64((const unsigned char *)PQgetvalue(res, 0, 0));
        PQclear(res);
        st = run_simple(conn, p, "COMMIT", err);
        if (st != IMGSTORE_STORE_OK) {
            break;
        }
        *deleted += n;
        if (n < batch) {
            break;
        }
    } while (apr_time_now() < deadline);
    return st;
}

imgstore_store_status_e imgstore_store_recount(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                               apr_int64_t *total, const char **err)
{
    static const Oid types[1] = {OID_INT8};
    static const int formats[1] = {1};
    static const int lengths[1] = {8};
    unsigned char now_be[8];
    const char *values[1] = {(const char *)now_be};
    imgstore_store_status_e st = IMGSTORE_STORE_OK;
    PGresult *res;

    put_be64(now_be, now);
    res = exec(conn, sql_recount, 1, types, values, lengths, formats);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != 8) {
        *err = "imgstore_state holds no row";
        st = IMGSTORE_STORE_SCHEMA;
    } else {
        *total = get_be64((const unsigned char *)PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return st;
}

imgstore_store_status_e imgstore_store_oldest_expired_age(PGconn *conn, apr_pool_t *p,
                                                          apr_int64_t now, apr_int64_t *age,
                                                          const char **err)
{
    imgstore_store_status_e st = IMGSTORE_STORE_OK;
    PGresult *res = exec(conn, sql_oldest_expiry, 0, NULL, NULL, NULL, NULL);

    *age = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        st = classify(conn, p, res, err);
    } else if (!PQgetisnull(res, 0, 0) && PQgetlength(res, 0, 0) == 8) {
        apr_int64_t oldest = get_be64((const unsigned char *)PQgetvalue(res, 0, 0));
        *age = oldest <= now ? now - oldest : 0;
    }
    PQclear(res);
    return st;
}
