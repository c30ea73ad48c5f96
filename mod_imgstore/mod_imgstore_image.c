/*
 * GET/HEAD /image/<hash>: find the row by the token's id, decrypt and verify
 * the whole image before the status line or any header is sent.
 */
#include "mod_imgstore.h"

#include <http_protocol.h>
#include <http_request.h>

#include <apr_strings.h>

#include <openssl/crypto.h>

#include "imgstore_sniff.h"
#include "imgstore_token.h"

typedef struct {
    const unsigned char *token;
    const unsigned char *id;
    apr_int64_t now;
    apr_int64_t max_ciphertext;
    /* out */
    imgstore_fetched_t fetched; /* owns the plaintext, decrypted in place */
    const char *plain;
    apr_size_t plain_len;
    const char *content_type;
    apr_int64_t expires_at;
    apr_status_t open_rv;
    int key_id;
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
        OPENSSL_cleanse(b->base, b->len);
        imgstore_fetched_free(&b->fetched);
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
        OPENSSL_cleanse((void *)b->plain, b->plain_len);
    }
    imgstore_fetched_free(&b->fetched);
}

/*
 * Runs while the connection is borrowed: fetch, then decrypt in place. The
 * result outlives the borrowed connection (PGresults are independent of it).
 */
static imgstore_store_status_e op_fetch(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    fetch_baton_t *b = baton;
    imgstore_row_t row;
    imgstore_aad_t aad;
    imgstore_store_status_e st;

    st = imgstore_store_fetch(conn, p, b->id, b->now, b->max_ciphertext, &b->fetched, &row, err);
    if (st != IMGSTORE_STORE_OK) {
        return st;
    }
    b->key_id = row.key_id;
    b->expires_at = row.expires_at;
    b->content_type = apr_pstrdup(p, row.content_type);
    b->plain_len =
        row.ciphertext_len >= IMGSTORE_TAG_BYTES ? row.ciphertext_len - IMGSTORE_TAG_BYTES : 0;
    aad.key_id = row.key_id;
    aad.id = b->id;
    aad.content_type = row.content_type;
    aad.expires_at = row.expires_at;
    /* The value's memory belongs to the fetch, which belongs to us now. */
    b->plain = (const char *)row.ciphertext;
    b->open_rv = imgstore_open(imgstore_globals.keyring, b->token, &aad, row.nonce, row.ciphertext,
                               row.ciphertext_len, (unsigned char *)row.ciphertext);
    return IMGSTORE_STORE_OK;
}

int imgstore_handle_image(request_rec *r, const imgstore_dir_conf_t *dc, const char *hash)
{
    unsigned char token[IMGSTORE_TOKEN_BYTES], id[IMGSTORE_ID_BYTES];
    fetch_baton_t b;
    apr_bucket_brigade *bb;
    const char *err = NULL;
    imgstore_store_status_e st;

    /* Malformed, unknown and expired are the same answer on purpose. */
    if (!imgstore_token_decode(hash, strlen(hash), token)) {
        return imgstore_send_error(r, HTTP_NOT_FOUND, "no such image");
    }
    imgstore_token_id(token, id);
    memset(&b, 0, sizeof(b));
    b.token = token;
    b.id = id;
    b.now = imgstore_now();
    b.max_ciphertext = imgstore_conf_max_size(dc) + IMGSTORE_TAG_BYTES;
    st = imgstore_db_run(r->server, r->pool, op_fetch, &b, &err);
    OPENSSL_cleanse(token, sizeof(token));
    if (st == IMGSTORE_STORE_NOTFOUND) {
        return imgstore_send_error(r, HTTP_NOT_FOUND, "no such image");
    }
    if (st != IMGSTORE_STORE_OK) {
        return imgstore_send_db_error(r, st, err);
    }
    if (b.open_rv != APR_SUCCESS) {
        discard_fetched(&b);
        imgstore_counter_add(IMGSTORE_COUNTER_TAG_FAILURES, 1);
        if (b.open_rv == APR_NOTFOUND) {
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
        return imgstore_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal error");
    }
    /* The expiry is authenticated now; check it against the clock once more. */
    if (b.expires_at <= imgstore_now() ||
        imgstore_type_from_mime(b.content_type) == IMGSTORE_TYPE_NONE) {
        discard_fetched(&b);
        return imgstore_send_error(r, HTTP_NOT_FOUND, "no such image");
    }

    imgstore_counter_add(IMGSTORE_COUNTER_RETRIEVALS, 1);
    imgstore_counter_add(IMGSTORE_COUNTER_RETRIEVAL_BYTES, (apr_uint64_t)b.plain_len);
    ap_set_content_type(r, b.content_type);
    imgstore_security_headers(r);
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
