#include "imgstore_store.h"

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

#include "imgstore_bigbuf.h"
#include "imgstore_bytes.h"
#include "imgstore_stmt.h"

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); stable across versions. */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25

#define FORMAT_TEXT 0
#define FORMAT_BINARY 1

/*
 * libpq keeps its input and output buffers at the largest message a
 * connection ever carried and never shrinks them. An image up to
 * IMGSTORE_STORE_SLICE crosses in one message (one INSERT, one SELECT:
 * fastest); a larger one is streamed in with COPY and read out in slices
 * (substring on EXTERNAL storage reads only the TOAST chunks it needs), so
 * no pooled connection keeps more than about a slice per direction.
 */
static const char sql_insert[] =
    "INSERT INTO imgstore_images (id, key_id, nonce, ciphertext, content_type, size,"
    " created_at, expires_at, views_left, delete_hash, expiry_period)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/* The quota is taken under the state row's lock, so concurrent uploads cannot overshoot it. */
static const char sql_insert_quota[] =
    "WITH quota AS (UPDATE imgstore_state SET total_bytes = total_bytes + $6"
    "  WHERE total_bytes + $6 <= $12 RETURNING 1)"
    " INSERT INTO imgstore_images (id, key_id, nonce, ciphertext, content_type, size,"
    " created_at, expires_at, views_left, delete_hash, expiry_period)"
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM quota";

#define COPY_COLUMNS                                                                               \
    " (id, key_id, nonce, ciphertext, content_type, size, created_at, expires_at, views_left,"     \
    " delete_hash, expiry_period) FROM STDIN (FORMAT binary)"
static const char sql_copy_in[] = "COPY imgstore_images" COPY_COLUMNS;
static const char sql_copy_in_tx[] = "BEGIN; COPY imgstore_images" COPY_COLUMNS;

/* After a COPY: taken after the row is in, so the state row is locked only until COMMIT. */
static const char sql_take_quota[] = "UPDATE imgstore_state SET total_bytes = total_bytes + $1"
                                     " WHERE total_bytes + $1 <= $2";

/*
 * The ciphertext comes whole when it fits a slice, else NULL and read with
 * sql_fetch_slice. Rows with NULLs are fetched too: they are bad rows (500),
 * not missing ones (404).
 */
static const char sql_fetch[] =
    "SELECT key_id, nonce, CASE WHEN octet_length(ciphertext) <= $4 THEN ciphertext END,"
    " content_type, size, created_at, expires_at, octet_length(ciphertext)::int8,"
    " expiry_period, coalesce(views_left, 0)::int8"
    " FROM imgstore_images"
    " WHERE id = $1 AND (expires_at > $2 OR expires_at IS NULL)"
    " AND (ciphertext IS NULL OR octet_length(ciphertext) <= $3)";

static const char sql_fetch_slice[] =
    "SELECT substring(ciphertext from $2::int4 for $3::int4) FROM imgstore_images WHERE id = $1";

/*
 * Run on every upload and retrieval: named (see imgstore_stmt.h). Unnamed,
 * PostgreSQL plans them with the bound values as constants, and the planner
 * copied each bound image twice (perf: 31% of a backend's CPU on uploads).
 */
static const Oid insert_types[12] = {OID_BYTEA, OID_INT2, OID_BYTEA, OID_BYTEA, OID_TEXT, OID_INT8,
                                     OID_INT8,  OID_INT8, OID_INT4,  OID_BYTEA, OID_INT8, OID_INT8};
static const imgstore_stmt_t stmt_insert = {2, "imgstore_insert_v4", sql_insert, 11, insert_types};
static const imgstore_stmt_t stmt_insert_quota = {3, "imgstore_insert_quota_v4", sql_insert_quota,
                                                  12, insert_types};
static const Oid fetch_types[4] = {OID_BYTEA, OID_INT8, OID_INT8, OID_INT8};
static const Oid slice_types[3] = {OID_BYTEA, OID_INT8, OID_INT8};
static const imgstore_stmt_t stmt_fetch = {0, "imgstore_fetch_v4", sql_fetch, 4, fetch_types};

/* User controls (sql/002): spend a view; find and delete a row for DELETE /image. */
static const char sql_spend_view[] = "SELECT imgstore_spend_view($1, $2)::int8";
static const Oid spend_types[2] = {OID_BYTEA, OID_INT8};
static const imgstore_stmt_t stmt_spend_view = {4, "imgstore_spend_view_v2", sql_spend_view, 2,
                                                spend_types};
static const char sql_delete_hash[] =
    "SELECT delete_hash FROM imgstore_images WHERE id = $1 AND expires_at > $2";
static const char sql_delete_row[] =
    "DELETE FROM imgstore_images WHERE id = $1 AND delete_hash = $2";
static const imgstore_stmt_t stmt_fetch_slice = {1, "imgstore_fetch_slice_v1", sql_fetch_slice, 3,
                                                 slice_types};

/* The hot cache's check that a cached row is still live: never reads the ciphertext. */
static const char sql_confirm[] = "SELECT 1 FROM imgstore_images WHERE id = $1 AND expires_at > $2";
static const Oid confirm_types[2] = {OID_BYTEA, OID_INT8};
static const imgstore_stmt_t stmt_confirm = {12, "imgstore_confirm_v1", sql_confirm, 2,
                                             confirm_types};

static const char sql_schema_version[] = "SELECT schema_version FROM imgstore_state";

/* $3 is the slack that lets a timer firing a little early still win its own interval. */
static const char sql_claim[] = "UPDATE imgstore_state SET last_cleanup = $1"
                                " WHERE last_cleanup <= $1 - $2 + $3 OR last_cleanup > $1 + $2";

static const char sql_claim_force[] = "UPDATE imgstore_state SET last_cleanup = $1";

/*
 * One batch of cleanup: the oldest expired rows after the cursor ($4, $5),
 * at most $2 of them and, past the first, no more than $3 bytes in all. No
 * row locks are taken beforehand (FOR UPDATE would need UPDATE rights): a
 * row another pass deletes first is simply gone. The deleted ids come back,
 * for the caller's cache (imgstore_store_purge_t.gone).
 */
#define SQL_PICK                                                                                   \
    " FROM imgstore_images WHERE expires_at <= $1 AND expires_at >= $4"                            \
    " AND (expires_at, id) > ($4, $5)"
static const char sql_delete_batch[] =
    "WITH pick AS (SELECT id, row_number() OVER w AS n, sum(size) OVER w AS bytes" SQL_PICK
    "   WINDOW w AS (ORDER BY expires_at, id ROWS UNBOUNDED PRECEDING)"
    "   ORDER BY expires_at, id LIMIT $2)"
    " DELETE FROM imgstore_images WHERE id IN"
    "   (SELECT id FROM pick WHERE n = 1 OR bytes <= $3) RETURNING id";
/* The row a one-row batch could not delete in time: the cursor moves past it. */
static const char sql_skip_one[] =
    "SELECT expires_at, id" SQL_PICK " AND $2::int8 > 0 AND $3::int8 >= 0"
    " ORDER BY expires_at, id LIMIT 1";

/* Served by the expiry index: one row from its low end. */
static const char sql_oldest_expiry[] = "SELECT min(expires_at) FROM imgstore_images";

static const char sql_recount_lock[] = "BEGIN; UPDATE imgstore_state SET total_bytes = total_bytes";

static const char sql_recount[] =
    "UPDATE imgstore_state SET total_bytes ="
    " (SELECT coalesce(sum(size), 0) FROM imgstore_images WHERE expires_at > $1)"
    " RETURNING total_bytes";

/* Map a failed statement to what the caller can do about it. */
static imgstore_status_e classify(PGconn *conn, apr_pool_t *p, const PGresult *res,
                                  const char **err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;

    if (msg == NULL || *msg == '\0') {
        msg = PQerrorMessage(conn);
    }
    *err = apr_pstrdup(p, msg ? msg : "unknown database error");
    if (PQstatus(conn) == CONNECTION_BAD || state == NULL) {
        return IMGSTORE_CONN;
    }
    /* Class 08 (connection exception), admin shutdown, crash shutdown, cannot connect now. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) {
        return IMGSTORE_CONN;
    }
    if (strcmp(state, "23505") == 0) {
        return IMGSTORE_DUPLICATE;
    }
    /* Undefined table or column: the migrations have not been applied. */
    if (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0) {
        return IMGSTORE_SCHEMA;
    }
    return IMGSTORE_ERROR;
}

static PGresult *exec(PGconn *conn, const char *sql, int n, const Oid *types,
                      const char *const *values, const int *lengths, const int *formats)
{
    return PQexecParams(conn, sql, n, types, values, lengths, formats, FORMAT_BINARY);
}

/* Run a statement without parameters that returns no rows; OK or the classified error. */
static imgstore_status_e run_simple(PGconn *conn, apr_pool_t *p, const char *sql, const char **err)
{
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res = PQexec(conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = classify(conn, p, res, err);
    }
    PQclear(res);
    return st;
}

/* Leave a connection that is still usable outside any transaction, for the next borrower. */
static void end_transaction(PGconn *conn)
{
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PQclear(PQexec(conn, "ROLLBACK"));
    }
}

/* A field of a binary COPY tuple: 32-bit length, then the bytes. */
static unsigned char *put_field(unsigned char *out, const void *data, apr_size_t len)
{
    imgstore_put_be(out, len, 4);
    memcpy(out + 4, data, len);
    return out + 4 + len;
}

/*
 * Send one row as a binary COPY stream (PostgreSQL's documented COPY BINARY
 * file format), the ciphertext in IMGSTORE_STORE_CHUNK pieces, and wait for
 * the server's verdict. Returns the final result (the caller PQclear()s it),
 * or NULL with the connection's error when sending failed.
 */
static PGresult *copy_row(PGconn *conn, apr_pool_t *p, const imgstore_row_t *row)
{
    static const unsigned char signature[11] = {'P',  'G',  'C',  'O',  'P', 'Y',
                                                '\n', 0xff, '\r', '\n', '\0'};
    apr_size_t ctlen = strlen(row->content_type), off;
    /* The trailer, sized from the data: content type, size, two times, period, end mark. */
    unsigned char head[128], *tail = apr_palloc(p, 4 + ctlen + 4 * (4 + 8) + 2);
    unsigned char be[8], *h = head, *t = tail;
    int ok;

    memcpy(h, signature, sizeof(signature));
    h += sizeof(signature);
    memset(h, 0, 8); /* flags, header extension length */
    h += 8;
    *h++ = 0;
    *h++ = 11; /* fields in the tuple */
    h = put_field(h, row->id, IMGSTORE_ID_BYTES);
    imgstore_put_be(be, (apr_uint64_t)row->key_id, 2);
    h = put_field(h, be, 2);
    h = put_field(h, row->nonce, IMGSTORE_NONCE_BYTES);
    /* The ciphertext field: its length here, its bytes streamed below. */
    imgstore_put_be(h, row->ciphertext_len, 4);
    h += 4;

    t = put_field(t, row->content_type, ctlen);
    imgstore_put_be64(be, row->size);
    t = put_field(t, be, 8);
    imgstore_put_be64(be, row->created_at);
    t = put_field(t, be, 8);
    imgstore_put_be64(be, row->expires_at);
    t = put_field(t, be, 8);
    if (row->views_left > 0) {
        imgstore_put_be(be, (apr_uint64_t)row->views_left, 4);
        t = put_field(t, be, 4);
    } else {
        imgstore_put_be(t, 0xffffffffu, 4); /* NULL */
        t += 4;
    }
    t = put_field(t, row->delete_hash, IMGSTORE_ID_BYTES);
    if (row->expiry_period >= 0) {
        imgstore_put_be64(be, row->expiry_period);
        t = put_field(t, be, 8);
    } else {
        imgstore_put_be(t, 0xffffffffu, 4); /* NULL: a v1 row */
        t += 4;
    }
    *t++ = 0xff; /* trailer: field count -1 */
    *t++ = 0xff;

    ok = PQputCopyData(conn, (const char *)head, (int)(h - head)) == 1;
    for (off = 0; ok && off < row->ciphertext_len; off += IMGSTORE_STORE_CHUNK) {
        apr_size_t n = row->ciphertext_len - off;
        if (n > IMGSTORE_STORE_CHUNK) {
            n = IMGSTORE_STORE_CHUNK;
        }
        ok = PQputCopyData(conn, (const char *)row->ciphertext + off, (int)n) == 1;
    }
    ok = ok && PQputCopyData(conn, (const char *)tail, (int)(t - tail)) == 1;
    if (PQputCopyEnd(conn, ok ? NULL : "client failed to send the row") != 1) {
        return NULL;
    }
    return PQgetResult(conn);
}

/* Drain what follows a statement's last result, so the connection is ready for the next one. */
static void drain(PGconn *conn)
{
    PGresult *res;

    while ((res = PQgetResult(conn)) != NULL) {
        PQclear(res);
    }
}

/* An image that fits a slice: one statement with bound parameters. */
static imgstore_status_e insert_one(PGconn *conn, apr_pool_t *p, const imgstore_row_t *row,
                                    apr_int64_t max_total, const char **err)
{
    static const int formats[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    unsigned char key_id[2], size[8], created[8], expires[8], period[8], quota[8], views[4];
    const char *values[12];
    int lengths[12];
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res;

    imgstore_put_be(key_id, (apr_uint64_t)row->key_id, 2);
    imgstore_put_be64(size, row->size);
    imgstore_put_be64(created, row->created_at);
    imgstore_put_be64(expires, row->expires_at);
    imgstore_put_be64(quota, max_total);
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
    imgstore_put_be(views, (apr_uint64_t)row->views_left, 4);
    values[8] = row->views_left > 0 ? (const char *)views : NULL;
    lengths[8] = 4;
    values[9] = (const char *)row->delete_hash;
    lengths[9] = IMGSTORE_ID_BYTES;
    imgstore_put_be64(period, row->expiry_period);
    values[10] = row->expiry_period >= 0 ? (const char *)period : NULL; /* NULL: a v1 row */
    lengths[10] = 8;
    values[11] = (const char *)quota;
    lengths[11] = 8;

    res = imgstore_stmt_exec(conn, max_total > 0 ? &stmt_insert_quota : &stmt_insert, values,
                             lengths, formats, FORMAT_BINARY);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = classify(conn, p, res, err);
    } else if (strcmp(PQcmdTuples(res), "1") != 0) {
        st = IMGSTORE_QUOTA;
    }
    PQclear(res);
    return st;
}

imgstore_status_e imgstore_store_insert(PGconn *conn, apr_pool_t *p, const imgstore_row_t *row,
                                        apr_int64_t max_total, const char **err)
{
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res;

    if (row->ciphertext_len <= IMGSTORE_STORE_SLICE) {
        return insert_one(conn, p, row, max_total, err);
    }
    res = PQexec(conn, max_total > 0 ? sql_copy_in_tx : sql_copy_in);

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        st = classify(conn, p, res, err);
        PQclear(res);
        drain(conn);
        end_transaction(conn);
        return st;
    }
    PQclear(res);
    res = copy_row(conn, p, row);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = classify(conn, p, res, err);
    }
    PQclear(res);
    drain(conn);
    if (st == IMGSTORE_OK && max_total > 0) {
        static const Oid types[2] = {OID_INT8, OID_INT8};
        static const int formats[2] = {1, 1}, lengths[2] = {8, 8};
        unsigned char size_be[8], max_be[8];
        const char *values[2] = {(const char *)size_be, (const char *)max_be};

        imgstore_put_be64(size_be, row->size);
        imgstore_put_be64(max_be, max_total);
        res = exec(conn, sql_take_quota, 2, types, values, lengths, formats);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            st = classify(conn, p, res, err);
        } else if (strcmp(PQcmdTuples(res), "1") != 0) {
            st = IMGSTORE_QUOTA;
        }
        PQclear(res);
        if (st == IMGSTORE_OK) {
            st = run_simple(conn, p, "COMMIT", err);
        }
    }
    end_transaction(conn);
    return st;
}

void imgstore_store_fetched_free(imgstore_fetched_t *f)
{
    imgstore_bigbuf_put(f->buf, f->used);
    f->buf = NULL;
    f->used = 0;
    if (f->res != NULL) {
        PQclear(f->res);
        f->res = NULL;
    }
}

/* Read a ciphertext larger than a slice into f->buf, slice by slice. */
static imgstore_status_e fetch_slices(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                      imgstore_fetched_t *f, apr_size_t total, const char **err)
{
    static const int formats[3] = {1, 1, 1}, lengths[3] = {IMGSTORE_ID_BYTES, 8, 8};
    unsigned char from_be[8], len_be[8];
    const char *values[3] = {(const char *)id, (const char *)from_be, (const char *)len_be};
    apr_size_t off;

    f->buf = imgstore_bigbuf_get(total);
    f->used = total;
    if (f->buf == NULL) {
        *err = "out of memory for the image";
        return IMGSTORE_ERROR;
    }
    for (off = 0; off < total;) {
        apr_size_t n = total - off < IMGSTORE_STORE_SLICE ? total - off : IMGSTORE_STORE_SLICE;
        imgstore_status_e st;
        PGresult *res;

        imgstore_put_be64(from_be, (apr_int64_t)off + 1); /* SQL counts from 1 */
        imgstore_put_be64(len_be, (apr_int64_t)n);
        res = imgstore_stmt_exec(conn, &stmt_fetch_slice, values, lengths, formats, FORMAT_BINARY);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            st = classify(conn, p, res, err);
            PQclear(res);
            return st;
        }
        /* Deleted meanwhile (it expired): as if it had never been found. */
        if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
            PQclear(res);
            return IMGSTORE_NOTFOUND;
        }
        if ((apr_size_t)PQgetlength(res, 0, 0) != n) {
            PQclear(res);
            *err = "stored row changed while it was read";
            return IMGSTORE_ERROR;
        }
        memcpy(f->buf + off, PQgetvalue(res, 0, 0), n);
        PQclear(res);
        off += n;
    }
    return IMGSTORE_OK;
}

imgstore_status_e imgstore_store_fetch(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                       apr_int64_t now, apr_int64_t max_ciphertext,
                                       imgstore_fetched_t *f, imgstore_row_t *row, const char **err)
{
    static const int formats[4] = {1, 1, 1, 1};
    /* 8: expiry_period (NULL for a v1 row), 9: views left (0: no limit). */
    static const int expect_len[10] = {2, IMGSTORE_NONCE_BYTES, -1, -1, 8, 8, 8, 8, -1, 8};
    unsigned char now_be[8], max_be[8], slice_be[8];
    const char *values[4];
    int lengths[4] = {IMGSTORE_ID_BYTES, 8, 8, 8};
    const unsigned char *v;
    imgstore_status_e st;
    apr_int64_t total;
    int i, whole;

    f->res = NULL;
    f->buf = NULL;
    f->used = 0;
    imgstore_put_be64(now_be, now);
    imgstore_put_be64(max_be, max_ciphertext);
    imgstore_put_be64(slice_be, IMGSTORE_STORE_SLICE);
    values[0] = (const char *)id;
    values[1] = (const char *)now_be;
    values[2] = (const char *)max_be;
    values[3] = (const char *)slice_be;

    f->res = imgstore_stmt_exec(conn, &stmt_fetch, values, lengths, formats, FORMAT_BINARY);
    if (PQresultStatus(f->res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, f->res, err);
        imgstore_store_fetched_free(f);
        return st;
    }
    if (PQntuples(f->res) != 1 || PQnfields(f->res) != 10) {
        imgstore_store_fetched_free(f);
        return IMGSTORE_NOTFOUND;
    }
    for (i = 0; i < 10; i++) {
        if ((PQgetisnull(f->res, 0, i) && i != 2 && i != 8) ||
            (expect_len[i] >= 0 && PQgetlength(f->res, 0, i) != expect_len[i])) {
            *err = "stored row has an unexpected shape";
            imgstore_store_fetched_free(f);
            return IMGSTORE_TAMPERED;
        }
    }
    total = (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(f->res, 0, 7));
    whole = !PQgetisnull(f->res, 0, 2);
    if (total < 0 || total > max_ciphertext || (whole && PQgetlength(f->res, 0, 2) != total) ||
        (!whole && total <= IMGSTORE_STORE_SLICE)) {
        *err = "stored row has an unexpected shape";
        imgstore_store_fetched_free(f);
        return IMGSTORE_TAMPERED;
    }
    if (!whole) {
        st = fetch_slices(conn, p, id, f, (apr_size_t)total, err);
        if (st != IMGSTORE_OK) {
            imgstore_store_fetched_free(f);
            return st;
        }
    }
    v = (const unsigned char *)PQgetvalue(f->res, 0, 0);
    row->id = id;
    row->key_id = (int)imgstore_be16(v);
    row->nonce = (const unsigned char *)PQgetvalue(f->res, 0, 1);
    row->ciphertext = f->buf != NULL ? f->buf : (const unsigned char *)PQgetvalue(f->res, 0, 2);
    row->ciphertext_len = (apr_size_t)total;
    /* Binary text is not NUL-terminated by contract; libpq does terminate every value. */
    row->content_type = PQgetvalue(f->res, 0, 3);
    row->size = (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(f->res, 0, 4));
    row->created_at = (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(f->res, 0, 5));
    row->expires_at = (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(f->res, 0, 6));
    row->expiry_period =
        PQgetisnull(f->res, 0, 8) || PQgetlength(f->res, 0, 8) != 8
            ? -1
            : (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(f->res, 0, 8));
    row->views_left = (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(f->res, 0, 9));
    row->delete_hash = NULL;
    return IMGSTORE_OK;
}

imgstore_status_e imgstore_store_spend_view(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                            apr_int64_t now, apr_int64_t *left, const char **err)
{
    static const int formats[2] = {1, 1}, lengths[2] = {IMGSTORE_ID_BYTES, 8};
    unsigned char now_be[8];
    const char *values[2] = {(const char *)id, (const char *)now_be};
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res;

    imgstore_put_be64(now_be, now);
    res = imgstore_stmt_exec(conn, &stmt_spend_view, values, lengths, formats, FORMAT_BINARY);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) || PQgetlength(res, 0, 0) != 8) {
        st = IMGSTORE_NOTFOUND;
    } else {
        *left = (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return st;
}

imgstore_status_e imgstore_store_delete_hash(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                             apr_int64_t now, unsigned char *hash, int *has_hash,
                                             const char **err)
{
    static const Oid types[2] = {OID_BYTEA, OID_INT8};
    static const int formats[2] = {1, 1}, lengths[2] = {IMGSTORE_ID_BYTES, 8};
    unsigned char now_be[8];
    const char *values[2] = {(const char *)id, (const char *)now_be};
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res;

    *has_hash = 0;
    imgstore_put_be64(now_be, now);
    res = exec(conn, sql_delete_hash, 2, types, values, lengths, formats);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else if (PQntuples(res) != 1) {
        st = IMGSTORE_NOTFOUND;
    } else if (!PQgetisnull(res, 0, 0) && PQgetlength(res, 0, 0) == IMGSTORE_ID_BYTES) {
        memcpy(hash, PQgetvalue(res, 0, 0), IMGSTORE_ID_BYTES);
        *has_hash = 1;
    }
    PQclear(res);
    return st;
}

imgstore_status_e imgstore_store_delete(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                        const unsigned char *hash, const char **err)
{
    static const Oid types[2] = {OID_BYTEA, OID_BYTEA};
    static const int formats[2] = {1, 1}, lengths[2] = {IMGSTORE_ID_BYTES, IMGSTORE_ID_BYTES};
    const char *values[2] = {(const char *)id, (const char *)hash};
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res = exec(conn, sql_delete_row, 2, types, values, lengths, formats);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = classify(conn, p, res, err);
    } else if (strcmp(PQcmdTuples(res), "1") != 0) {
        st = IMGSTORE_NOTFOUND;
    }
    PQclear(res);
    return st;
}

imgstore_status_e imgstore_store_confirm(PGconn *conn, apr_pool_t *p, const unsigned char *id,
                                         apr_int64_t now, const char **err)
{
    static const int formats[2] = {1, 1}, lengths[2] = {IMGSTORE_ID_BYTES, 8};
    unsigned char now_be[8];
    const char *values[2] = {(const char *)id, (const char *)now_be};
    imgstore_status_e st;
    PGresult *res;

    imgstore_put_be64(now_be, now);
    res = imgstore_stmt_exec(conn, &stmt_confirm, values, lengths, formats, FORMAT_BINARY);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else {
        st = PQntuples(res) == 1 ? IMGSTORE_OK : IMGSTORE_NOTFOUND;
    }
    PQclear(res);
    return st;
}

imgstore_status_e imgstore_store_schema_version(PGconn *conn, apr_pool_t *p, int *version,
                                                const char **err)
{
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res = PQexecParams(conn, sql_schema_version, 0, NULL, NULL, NULL, NULL, FORMAT_TEXT);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else if (PQntuples(res) != 1) {
        *err = "imgstore_state holds no row";
        st = IMGSTORE_SCHEMA;
    } else {
        *version = atoi(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return st;
}

imgstore_status_e imgstore_store_claim_cleanup(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                               apr_int64_t interval, int force, const char **err)
{
    static const Oid types[3] = {OID_INT8, OID_INT8, OID_INT8};
    static const int formats[3] = {1, 1, 1};
    static const int lengths[3] = {8, 8, 8};
    unsigned char now_be[8], interval_be[8], slack_be[8];
    const char *values[3] = {(const char *)now_be, (const char *)interval_be,
                             (const char *)slack_be};
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res;

    imgstore_put_be64(now_be, now);
    imgstore_put_be64(interval_be, interval);
    /* A timer tick may land a little before a whole interval has passed (whole seconds). */
    imgstore_put_be64(slack_be, interval >= 4 ? 2 : interval / 2);
    res = force ? exec(conn, sql_claim_force, 1, types, values, lengths, formats)
                : exec(conn, sql_claim, 3, types, values, lengths, formats);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = classify(conn, p, res, err);
    } else if (strcmp(PQcmdTuples(res), "1") != 0) {
        st = force ? IMGSTORE_SCHEMA : IMGSTORE_NOTFOUND;
        if (force) {
            *err = "imgstore_state holds no row";
        }
    }
    PQclear(res);
    return st;
}

/* Statement or lock timeout: the batch was too big for its time, not a broken database. */
static int timed_out(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return state != NULL && (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0);
}

/* Moves the cursor past the first row after it; NOTFOUND when there is none. */
static imgstore_status_e skip_one(PGconn *conn, apr_pool_t *p, const Oid *types,
                                  const char *const *values, const int *lengths,
                                  unsigned char *cursor_be, unsigned char **cursor_id,
                                  int *cursor_len, const char **err)
{
    static const int formats[5] = {1, 1, 1, 1, 1};
    PGresult *res = exec(conn, sql_skip_one, 5, types, values, lengths, formats);
    imgstore_status_e st = IMGSTORE_NOTFOUND;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 8) {
        memcpy(cursor_be, PQgetvalue(res, 0, 0), 8);
        *cursor_len = PQgetlength(res, 0, 1);
        *cursor_id = apr_pmemdup(p, PQgetvalue(res, 0, 1), (apr_size_t)*cursor_len + 1);
        st = IMGSTORE_OK;
    }
    PQclear(res);
    return st;
}

/*
 * Hands the ids of one committed batch (a result of sql_delete_batch) to
 * pu->gone, through ids: room for a whole batch.
 */
static void report_gone(const imgstore_store_purge_t *pu, const PGresult *res,
                        const unsigned char **ids)
{
    int i, k = 0, n = PQntuples(res);

    for (i = 0; i < n; i++) {
        if (PQgetlength(res, i, 0) == IMGSTORE_ID_BYTES) {
            ids[k++] = (const unsigned char *)PQgetvalue(res, i, 0);
        }
    }
    if (k > 0) {
        pu->gone(pu->gone_ctx, ids, k);
    }
}

imgstore_status_e imgstore_store_delete_expired(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                                imgstore_store_purge_t *pu, const char **err)
{
    static const Oid types[5] = {OID_INT8, OID_INT8, OID_INT8, OID_INT8, OID_BYTEA};
    static const int formats[5] = {1, 1, 1, 1, 1};
    unsigned char now_be[8], rows_be[8], bytes_be[8], cursor_be[8], *cursor_id = (void *)"";
    const char *values[5];
    int lengths[5] = {8, 8, 8, 8, 0};
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(pu->budget_ms);
    /*
     * A third of the budget at most: a batch that times out, then the one row
     * that made it (stepped over), still leave time to delete the rows behind.
     */
    apr_int64_t timeout_ms = pu->budget_ms / 3;
    int max_rows = pu->rows > 0 ? pu->rows : 1;
    imgstore_status_e st = IMGSTORE_OK;
    const char *begin;
    const unsigned char **ids = NULL; /* for pu->gone, allocated at its first batch */

    timeout_ms = timeout_ms < 100 ? 100 : timeout_ms > 10000 ? 10000 : timeout_ms;
    begin = apr_psprintf(p,
                         "BEGIN; SET LOCAL statement_timeout = %" APR_INT64_T_FMT
                         "; SET LOCAL lock_timeout = %" APR_INT64_T_FMT,
                         timeout_ms, timeout_ms < 2000 ? timeout_ms : 2000);
    pu->deleted = 0;
    pu->skipped = 0;
    pu->backlog = 0;
    pu->rows = pu->next_rows > 0 && pu->next_rows < max_rows ? pu->next_rows : max_rows;
    imgstore_put_be64(now_be, now);
    imgstore_put_be64(cursor_be, (apr_uint64_t)APR_INT64_MIN);
    imgstore_put_be64(bytes_be, pu->bytes);
    for (;;) {
        apr_int64_t n = 0;
        PGresult *res;

        if (apr_time_now() >= deadline ||
            (pu->stop != NULL && __atomic_load_n(pu->stop, __ATOMIC_ACQUIRE))) {
            pu->backlog = 1;
            break;
        }
        imgstore_put_be64(rows_be, pu->rows);
        values[0] = (const char *)now_be;
        values[1] = (const char *)rows_be;
        values[2] = (const char *)bytes_be;
        values[3] = (const char *)cursor_be;
        values[4] = (const char *)cursor_id;
        st = run_simple(conn, p, begin, err);
        if (st != IMGSTORE_OK) {
            break;
        }
        res = exec(conn, sql_delete_batch, 5, types, values, lengths, formats);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            int retry = timed_out(res);

            st = classify(conn, p, res, err);
            PQclear(res);
            PQclear(PQexec(conn, "ROLLBACK"));
            if (!retry) {
                break;
            }
            st = IMGSTORE_OK;
            if (pu->rows > 1) {
                /* Start again from one row and grow back (see below). */
                pu->rows = 1;
                continue;
            }
            /* Not even one row fits the time: step past it, the rest behind it still goes. */
            st = skip_one(conn, p, types, values, lengths, cursor_be, &cursor_id, &lengths[4], err);
            if (st != IMGSTORE_OK) {
                st = st == IMGSTORE_NOTFOUND ? IMGSTORE_OK : st;
                break;
            }
            pu->skipped++;
            continue;
        }
        n = PQntuples(res);
        st = run_simple(conn, p, "COMMIT", err);
        if (st != IMGSTORE_OK) {
            PQclear(res);
            break;
        }
        /* Only a committed delete is told: a failed COMMIT keeps the rows. */
        if (pu->gone != NULL && n > 0) {
            if (ids == NULL) {
                ids = apr_palloc(p, sizeof(*ids) * (apr_size_t)(n > max_rows ? n : max_rows));
            }
            report_gone(pu, res, ids);
        }
        PQclear(res);
        pu->deleted += n;
        if (n == 0) {
            break; /* none left after the cursor */
        }
        pu->rows = pu->rows > max_rows / 2 ? max_rows : pu->rows * 2;
    }
    pu->next_rows = pu->rows;
    pu->rows = max_rows;
    return st;
}

imgstore_status_e imgstore_store_recount(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                         apr_int64_t *total, const char **err)
{
    static const Oid types[1] = {OID_INT8};
    static const int formats[1] = {1};
    static const int lengths[1] = {8};
    unsigned char now_be[8];
    const char *values[1] = {(const char *)now_be};
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res;

    imgstore_put_be64(now_be, now);
    /*
     * Lock the state row first, in a statement of its own: the sum is then
     * read with a snapshot taken after every upload that had raised the
     * total (holding this lock until its COMMIT) is visible. In one
     * statement the sum's snapshot predates the wait for the lock, and an
     * upload committing meanwhile would drop out of the total.
     */
    st = run_simple(conn, p, sql_recount_lock, err);
    if (st != IMGSTORE_OK) {
        end_transaction(conn);
        return st;
    }
    res = exec(conn, sql_recount, 1, types, values, lengths, formats);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != 8) {
        *err = "imgstore_state holds no row";
        st = IMGSTORE_SCHEMA;
    } else {
        *total = (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    if (st == IMGSTORE_OK) {
        st = run_simple(conn, p, "COMMIT", err);
    }
    end_transaction(conn);
    return st;
}

imgstore_status_e imgstore_store_oldest_expired_age(PGconn *conn, apr_pool_t *p, apr_int64_t now,
                                                    apr_int64_t *age, const char **err)
{
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res = exec(conn, sql_oldest_expiry, 0, NULL, NULL, NULL, NULL);

    *age = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        st = classify(conn, p, res, err);
    } else if (!PQgetisnull(res, 0, 0) && PQgetlength(res, 0, 0) == 8) {
        apr_int64_t oldest =
            (apr_int64_t)imgstore_be64((const unsigned char *)PQgetvalue(res, 0, 0));
        *age = oldest <= now ? now - oldest : 0;
    }
    PQclear(res);
    return st;
}

/* The first host records its chain; every host reads the one recorded (a single row). */
static const char sql_lineage[] =
    "WITH ins AS (INSERT INTO imgstore_expiry_chain (lineage, created_at) VALUES ($1, $2)"
    "  ON CONFLICT (singleton) DO NOTHING RETURNING lineage)"
    " SELECT lineage FROM ins UNION ALL SELECT lineage FROM imgstore_expiry_chain";

imgstore_status_e imgstore_store_lineage(PGconn *conn, apr_pool_t *p,
                                         const unsigned char lineage[IMGSTORE_STORE_LINEAGE_BYTES],
                                         apr_int64_t now,
                                         unsigned char stored[IMGSTORE_STORE_LINEAGE_BYTES],
                                         const char **err)
{
    static const Oid types[2] = {OID_BYTEA, OID_INT8};
    static const int formats[2] = {1, 1};
    unsigned char created[8];
    const char *values[2] = {(const char *)lineage, (const char *)created};
    int lengths[2] = {IMGSTORE_STORE_LINEAGE_BYTES, 8};
    imgstore_status_e st = IMGSTORE_OK;
    PGresult *res;

    imgstore_put_be64(created, now);
    res = PQexecParams(conn, sql_lineage, 2, types, values, lengths, formats, FORMAT_BINARY);
    /*
     * Two hosts (or threads) recording at once: the loser's INSERT waits for
     * the winner, then does nothing, and its SELECT still sees the snapshot
     * taken before the winner committed, so no row comes back. The next
     * statement has a new snapshot and reads the winner's row.
     */
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
        PQclear(res);
        res = PQexecParams(conn, sql_lineage, 2, types, values, lengths, formats, FORMAT_BINARY);
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(conn, p, res, err);
    } else if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != IMGSTORE_STORE_LINEAGE_BYTES) {
        *err = "imgstore_expiry_chain holds an unexpected row";
        st = IMGSTORE_ERROR;
    } else {
        memcpy(stored, PQgetvalue(res, 0, 0), IMGSTORE_STORE_LINEAGE_BYTES);
    }
    PQclear(res);
    return st;
}
