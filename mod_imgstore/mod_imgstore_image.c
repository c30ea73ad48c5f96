/*
 * GET/HEAD /image/<token>: find the row by the token's id, decrypt and
 * verify the whole image before the status line or any header is sent; a
 * GET of an image with a view limit then spends a view (the last one
 * deletes the row), so a tampered row or a failed answer spends none.
 * DELETE /image/<token> with X-Delete-Token.
 */
#include "mod_imgstore_image.h"

#include <http_protocol.h>

#include <apr_strings.h>

#include <openssl/crypto.h>

#include "imgstore_image.h"
#include "imgstore_wipe.h"
#include "mod_imgstore_cache.h"
#include "mod_imgstore_db.h"
#include "mod_imgstore_expiry.h"
#include "mod_imgstore_response.h"
#include "mod_imgstore_status.h"

typedef struct {
    const unsigned char *token; /* the capability, decoded from the URL */
    const unsigned char *id;    /* its SHA-256: the row's key */
    server_rec *s;              /* whose ImgStoreCache a miss fills */
    const imgstore_image_chain_t *chain;
    apr_int64_t now;
    apr_int64_t max_ciphertext;
    const imgstore_keyring_t *keyring; /* the keys of the request's server */
    int spend;       /* a GET, not a HEAD: an image with a view limit spends one */
    int hit_limited; /* the cached row has a view limit */
    /* out */
    imgstore_fetched_t fetched; /* owns the plaintext, decrypted in place */
    const char *plain;
    apr_size_t plain_len;
    const char *content_type;
    imgstore_status_e opened;
    int key_id;
    int gone; /* this GET spent the last view */
} fetch_baton_t;

/*
 * A bucket that owns what the fetch returned: the image goes to the client
 * straight from that memory, decrypted in place, with no copy and no second
 * buffer. The plaintext is wiped, then freed, when the last reference goes,
 * which may be after the request, in another thread.
 */
typedef struct {
    apr_bucket_refcount refcount;
    imgstore_fetched_t fetched;
    char *base;
    apr_size_t len;
} image_bucket_t;

static void image_bucket_destroy(void *data)
{
    image_bucket_t *b = data;

    if (apr_bucket_shared_destroy(b)) {
        imgstore_wipe(b->base, b->len);
        imgstore_store_fetched_free(&b->fetched);
        apr_bucket_free(b);
    }
}

static apr_status_t image_bucket_read(apr_bucket *e, const char **str, apr_size_t *len,
                                      apr_read_type_e block)
{
    const image_bucket_t *b = e->data;

    *str = b->base + e->start;
    *len = e->length;
    return APR_SUCCESS;
}

static const apr_bucket_type_t image_bucket_type = {
    "IMGSTORE_IMAGE",        5,
    APR_BUCKET_DATA,         image_bucket_destroy,
    image_bucket_read,       apr_bucket_setaside_noop,
    apr_bucket_shared_split, apr_bucket_shared_copy};

static apr_bucket *image_bucket_create(const imgstore_fetched_t *fetched, const char *base,
                                       apr_size_t len, apr_bucket_alloc_t *list)
{
    apr_bucket *e = apr_bucket_alloc(sizeof(*e), list);
    image_bucket_t *b = apr_bucket_alloc(sizeof(*b), list);

    APR_BUCKET_INIT(e);
    e->free = apr_bucket_free;
    e->list = list;
    b->fetched = *fetched;
    b->base = (char *)base;
    b->len = len;
    e = apr_bucket_shared_make(e, b, 0, len);
    e->type = &image_bucket_type;
    return e;
}

/* Wipe what was decrypted (all or part of it), then free it. */
static void discard_fetched(fetch_baton_t *b)
{
    if (b->plain != NULL) {
        imgstore_wipe((void *)b->plain, b->plain_len);
        b->plain = NULL;
    }
    imgstore_store_fetched_free(&b->fetched);
}

/* Decrypt a row held by b->fetched in place. */
static void open_row(fetch_baton_t *b, apr_pool_t *p, const imgstore_row_t *row)
{
    b->key_id = row->key_id;
    b->content_type = apr_pstrdup(p, row->content_type);
    /* The value's memory belongs to the fetch, which belongs to us now. */
    b->plain = (const char *)row->ciphertext;
    b->opened = imgstore_image_open(b->keyring, b->chain, b->token, b->id, row, imgstore_now(),
                                    &b->plain_len);
}

/*
 * After the open authenticated the image, a GET of an image with a view
 * limit spends a view (the last one deletes the row). NOTFOUND: the others
 * spent the last one, or it was deleted or expired meanwhile. On failure the
 * image stays where it is: CONN makes imgstore_db_run() call the operation
 * again on a fresh connection, and a hit then spends from the same image.
 */
static imgstore_status_e spend(PGconn *conn, apr_pool_t *p, fetch_baton_t *b, int limited,
                               const char **err)
{
    apr_int64_t left;
    imgstore_status_e st;

    if (b->opened != IMGSTORE_OK || !limited || !b->spend) {
        return IMGSTORE_OK;
    }
    st = imgstore_store_spend_view(conn, p, b->id, b->now, &left, err);
    if (st != IMGSTORE_OK) {
        return st;
    }
    b->gone = left == 0;
    return IMGSTORE_OK;
}

/*
 * Runs while the connection is borrowed: fetch, keep the sealed row in the
 * cache, decrypt in place, spend the view. The result outlives the borrowed
 * connection (PGresults are independent of it).
 */
static imgstore_status_e op_fetch(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    fetch_baton_t *b = baton;
    imgstore_row_t row;
    imgstore_status_e st;

    /* A second call (the first lost its connection after the fetch) starts afresh. */
    discard_fetched(b);
    st = imgstore_store_fetch(conn, p, b->id, b->now, b->max_ciphertext, &b->fetched, &row, err);
    if (st == IMGSTORE_TAMPERED) {
        /* A row no upload makes (NULLs, wrong lengths): as bad as a tag that fails. */
        b->key_id = 0;
        b->opened = IMGSTORE_TAMPERED;
        return IMGSTORE_OK;
    }
    if (st != IMGSTORE_OK) {
        return st;
    }
    imgstore_cache_put(b->s, p, &row);
    open_row(b, p, &row);
    return spend(conn, p, b, row.views_left > 0, err);
}

/*
 * A cache hit, confirmed by the database in one statement that reads no
 * ciphertext: a GET of an image with a view limit spends the view (opened
 * first, as on a miss); anything else asks whether the row is live.
 */
static imgstore_status_e op_hit(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    fetch_baton_t *b = baton;

    if (b->hit_limited && b->spend) {
        return spend(conn, p, b, 1, err);
    }
    return imgstore_store_confirm(conn, p, b->id, b->now, err);
}

/*
 * From the cache when it holds the row and the database confirms it; else
 * from the database. NOTFOUND drops this host's copy.
 */
static imgstore_status_e fetch_image(request_rec *r, fetch_baton_t *b, const char **err)
{
    imgstore_row_t row;
    imgstore_status_e st;

    if (imgstore_cache_get(r->server, r->pool, b->id, b->max_ciphertext, &b->fetched, &row) ==
        IMGSTORE_OK) {
        b->hit_limited = row.views_left > 0;
        if (b->hit_limited && b->spend) {
            open_row(b, r->pool, &row);
        }
        st = imgstore_db_run(r->server, r->pool, op_hit, b, err);
        if (st != IMGSTORE_OK) {
            discard_fetched(b);
            if (st == IMGSTORE_NOTFOUND) {
                imgstore_cache_remove(r->server, r->pool, b->id);
            }
            return st;
        }
        if (!(b->hit_limited && b->spend)) {
            open_row(b, r->pool, &row);
        }
        imgstore_status_count(IMGSTORE_COUNTER_CACHE_HITS, 1);
        return IMGSTORE_OK;
    }
    if (imgstore_cache_enabled(r->server)) {
        imgstore_status_count(IMGSTORE_COUNTER_CACHE_MISSES, 1);
    }
    st = imgstore_db_run(r->server, r->pool, op_fetch, b, err);
    if (st != IMGSTORE_OK) {
        discard_fetched(b);
    }
    return st;
}

int imgstore_image_handle(request_rec *r, const imgstore_dir_conf_t *dc, const char *token_text)
{
    unsigned char token[IMGSTORE_TOKEN_BYTES], id[IMGSTORE_ID_BYTES];
    fetch_baton_t b;
    apr_bucket_brigade *bb;
    const char *err = NULL;
    imgstore_status_e st;
    int status;

    /* Malformed, unknown and expired are the same answer on purpose. */
    if (!imgstore_token_decode(token_text, strlen(token_text), token)) {
        return imgstore_response_fail(r, IMGSTORE_NOTFOUND, "no such image", NULL);
    }
    memset(&b, 0, sizeof(b));
    status = imgstore_expiry_chain(r, &b.chain);
    if (status != OK) {
        OPENSSL_cleanse(token, sizeof(token));
        return status;
    }
    imgstore_token_id(token, id);
    b.token = token;
    b.id = id;
    b.s = r->server;
    b.keyring = imgstore_conf_settings(r->server)->keyring;
    b.now = imgstore_now();
    b.max_ciphertext = imgstore_conf_max_size(dc) + IMGSTORE_TAG_BYTES;
    b.spend = !r->header_only;
    st = fetch_image(r, &b, &err);
    OPENSSL_cleanse(token, sizeof(token));
    if (st != IMGSTORE_OK) {
        return imgstore_response_fail(r, st, "no such image", err);
    }
    if (b.gone) {
        /* The last view: the row is gone, and so goes this host's copy. */
        imgstore_cache_remove(r->server, r->pool, id);
    }
    if (b.opened == IMGSTORE_NOKEY || b.opened == IMGSTORE_TAMPERED ||
        b.opened == IMGSTORE_INTERNAL) {
        discard_fetched(&b);
        imgstore_cache_remove(r->server, r->pool, id);
        imgstore_status_count(IMGSTORE_COUNTER_TAG_FAILURES, 1);
        if (b.opened == IMGSTORE_NOKEY) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          IMGLOGNO(00040) "image sealed with key id %d, which no "
                                          "ImgStoreKeyFile provides",
                          b.key_id);
        } else {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          IMGLOGNO(00041) "image failed authentication (key id %d): the row was "
                                          "altered or the key file is wrong",
                          b.key_id);
        }
        return imgstore_response_fail(r, b.opened, NULL, NULL);
    }
    if (b.opened != IMGSTORE_OK) {
        /* Expired since the query, or not a type this module serves. */
        discard_fetched(&b);
        imgstore_cache_remove(r->server, r->pool, id);
        return imgstore_response_fail(r, b.opened, "no such image", NULL);
    }

    imgstore_status_count(IMGSTORE_COUNTER_RETRIEVALS, 1);
    imgstore_status_count(IMGSTORE_COUNTER_RETRIEVAL_BYTES, (apr_uint64_t)b.plain_len);
    ap_set_content_type(r, b.content_type);
    imgstore_response_security_headers(r);
    apr_table_setn(r->headers_out, "Content-Security-Policy", "default-src 'none'; sandbox");
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    ap_set_content_length(r, (apr_off_t)b.plain_len);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    if (!r->header_only && b.plain_len > 0) {
        APR_BRIGADE_INSERT_TAIL(
            bb, image_bucket_create(&b.fetched, b.plain, b.plain_len, r->connection->bucket_alloc));
    } else {
        discard_fetched(&b);
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    return ap_pass_brigade(r->output_filters, bb) == APR_SUCCESS ? OK : AP_FILTER_ERROR;
}

typedef struct {
    const unsigned char *id;
    const unsigned char *given; /* SHA-256 of the X-Delete-Token, NULL when absent or malformed */
    apr_int64_t now;
    int refused; /* out: the row exists, the token does not match */
} delete_baton_t;

static imgstore_status_e op_delete(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    delete_baton_t *b = baton;
    unsigned char stored[IMGSTORE_ID_BYTES];
    int has_hash = 0;
    imgstore_status_e st;

    st = imgstore_store_delete_hash(conn, p, b->id, b->now, stored, &has_hash, err);
    if (st != IMGSTORE_OK) {
        return st;
    }
    /* Hashes of 256-bit tokens, compared in constant time all the same. */
    if (b->given == NULL || !has_hash || CRYPTO_memcmp(stored, b->given, sizeof(stored)) != 0) {
        b->refused = 1;
        return IMGSTORE_OK;
    }
    return imgstore_store_delete(conn, p, b->id, stored, err);
}

int imgstore_image_delete(request_rec *r, const char *token_text)
{
    void *given_data = NULL;
    const char *given_text;
    unsigned char token[IMGSTORE_TOKEN_BYTES], id[IMGSTORE_ID_BYTES], given[IMGSTORE_ID_BYTES];
    delete_baton_t b;
    const char *err = NULL;
    imgstore_status_e st;

    apr_pool_userdata_get(&given_data, IMGSTORE_DELETE_HEADER, r->pool);
    given_text = given_data;
    if (!imgstore_token_decode(token_text, strlen(token_text), token)) {
        return imgstore_response_fail(r, IMGSTORE_NOTFOUND, "no such image", NULL);
    }
    imgstore_token_id(token, id);
    OPENSSL_cleanse(token, sizeof(token));
    memset(&b, 0, sizeof(b));
    b.id = id;
    b.now = imgstore_now();
    if (given_text != NULL && imgstore_token_decode(given_text, strlen(given_text), token)) {
        imgstore_token_delete_hash(token, given);
        OPENSSL_cleanse(token, sizeof(token));
        b.given = given;
    }
    st = imgstore_db_run(r->server, r->pool, op_delete, &b, &err);
    if ((st == IMGSTORE_OK && !b.refused) || st == IMGSTORE_NOTFOUND) {
        /* Gone from the database: gone from this host's cache (the others' hits ask it). */
        imgstore_cache_remove(r->server, r->pool, id);
    }
    if (st != IMGSTORE_OK) {
        return imgstore_response_fail(r, st, "no such image", err);
    }
    if (b.refused) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      IMGLOGNO(00100) "delete refused: %s X-Delete-Token",
                      given_text == NULL ? "no" : "wrong");
        return imgstore_response_error(r, HTTP_FORBIDDEN,
                                       given_text == NULL ? "X-Delete-Token is required"
                                                          : "wrong X-Delete-Token");
    }
    imgstore_response_security_headers(r);
    r->status = HTTP_NO_CONTENT;
    return OK;
}
