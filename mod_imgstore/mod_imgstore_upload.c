/*
 * POST /upload: stream the multipart body through the parser, sniff the
 * type, seal the image in place and insert it in one statement. The body is
 * read completely before a database connection is taken.
 */
#include "mod_imgstore.h"

#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include <apr_strings.h>

#include <openssl/crypto.h>

#include "imgstore_json.h"
#include "imgstore_multipart.h"
#include "imgstore_sniff.h"
#include "imgstore_token.h"
#include "imgstore_value.h"

#define READ_BLOCK (64 * 1024)

typedef struct {
    imgstore_row_t row;
    apr_int64_t max_total;
    int attempts;
} insert_baton_t;

static imgstore_store_status_e op_insert(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    insert_baton_t *b = baton;
    imgstore_store_status_e st = imgstore_store_insert(conn, p, &b->row, b->max_total, err);

    /*
     * The id is 256 random bits: finding it taken on a retry means the first
     * attempt committed before its connection broke.
     */
    if (st == IMGSTORE_STORE_DUPLICATE && b->attempts++ > 0) {
        return IMGSTORE_STORE_OK;
    }
    b->attempts++;
    return st;
}

static int mp_status_to_http(imgstore_mp_status_e st)
{
    switch (st) {
        case IMGSTORE_MP_ERR_FILE_TOO_BIG:
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        case IMGSTORE_MP_ERR_NOMEM:
            return HTTP_INTERNAL_SERVER_ERROR;
        default:
            return HTTP_BAD_REQUEST;
    }
}

/*
 * Read the whole body into the parser. Returns OK, or an HTTP status to
 * answer with (*why set), or AP_FILTER_ERROR when httpd already answered.
 */
static int read_body(request_rec *r, imgstore_multipart_t *mp, apr_off_t max_body, const char **why)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_off_t total = 0;
    int seen_eos = 0;
    imgstore_mp_status_e st = IMGSTORE_MP_OK;

    while (!seen_eos) {
        apr_bucket *b;
        apr_status_t rv =
            ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ, READ_BLOCK);
        if (rv != APR_SUCCESS) {
            int status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            if (status == AP_FILTER_ERROR) {
                return AP_FILTER_ERROR;
            }
            *why = status == HTTP_REQUEST_ENTITY_TOO_LARGE ? "request body too large"
                   : status == HTTP_REQUEST_TIME_OUT       ? "timed out reading the request body"
                                                           : "could not read the request body";
            return status;
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t len;

            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                continue;
            }
            rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                *why = "could not read the request body";
                return HTTP_BAD_REQUEST;
            }
            total += (apr_off_t)len;
            if (total > max_body) {
                *why = "image too large";
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            /* After the closing boundary the rest is epilogue: count it, ignore it. */
            if (st == IMGSTORE_MP_OK) {
                st = imgstore_multipart_feed(mp, data, len);
                if (st != IMGSTORE_MP_OK && st != IMGSTORE_MP_DONE) {
                    *why = imgstore_multipart_strerror(st);
                    return mp_status_to_http(st);
                }
            }
        }
        apr_brigade_cleanup(bb);
    }
    apr_table_setn(r->notes, "imgstore-body-read", "1");
    st = imgstore_multipart_finish(mp);
    if (st != IMGSTORE_MP_DONE) {
        *why = imgstore_multipart_strerror(st);
        return mp_status_to_http(st);
    }
    return OK;
}

static const char *image_url(request_rec *r, const imgstore_dir_conf_t *dc, const char *hash)
{
    if (dc->base_url != NULL) {
        return apr_pstrcat(r->pool, dc->base_url, "/image/", hash, NULL);
    }
    return ap_construct_url(r->pool,
                            apr_pstrcat(r->pool, imgstore_mount_of(r), "/image/", hash, NULL), r);
}

static int answer_created(request_rec *r, const imgstore_dir_conf_t *dc, const char *hash,
                          const imgstore_row_t *row, apr_int64_t ttl)
{
    imgstore_json_t *j = imgstore_json_object(r->pool);
    const char *url = image_url(r, dc, hash), *body;
    char expires[32];
    apr_size_t len;

    imgstore_format_iso8601(expires, row->expires_at);
    imgstore_json_add_str(j, "hash", hash);
    imgstore_json_add_str(j, "url", url);
    imgstore_json_add_str(j, "expires_at", expires);
    imgstore_json_add_int(j, "expires_in", ttl);
    imgstore_json_add_int(j, "size", row->size);
    imgstore_json_add_str(j, "type", row->content_type);
    body = imgstore_json_finish(j, &len);
    apr_table_setn(r->headers_out, "Location", url);
    return imgstore_send_json(r, HTTP_CREATED, body, len);
}

int imgstore_handle_upload(request_rec *r, const imgstore_dir_conf_t *dc)
{
    apr_int64_t max_size = imgstore_conf_max_size(dc), ttl = imgstore_conf_ttl(dc);
    apr_off_t max_body = (apr_off_t)max_size + IMGSTORE_BODY_OVERHEAD;
    const char *ctype = apr_table_get(r->headers_in, "Content-Type");
    const char *clen = apr_table_get(r->headers_in, "Content-Length");
    const char *boundary = NULL, *why = NULL, *err = NULL;
    unsigned char token[IMGSTORE_TOKEN_BYTES], id[IMGSTORE_ID_BYTES];
    unsigned char nonce[IMGSTORE_NONCE_BYTES];
    char hash[IMGSTORE_TOKEN_CHARS + 1];
    imgstore_mp_limits_t limits = {0};
    imgstore_multipart_t *mp;
    imgstore_aad_t aad;
    insert_baton_t ins;
    imgstore_type_e type;
    unsigned char *data;
    apr_size_t size;
    imgstore_store_status_e st;
    int status;

    /* Decided before reading a byte: no 100-continue is sent for a body we refuse. */
    if (clen != NULL) {
        apr_off_t n;
        if (apr_strtoff(&n, clen, NULL, 10) == APR_SUCCESS && n > max_body) {
            return imgstore_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "image too large");
        }
    }
    why = ctype ? imgstore_multipart_boundary(r->pool, ctype, &boundary)
                : "expected a multipart/form-data body with the image in field 'file'";
    if (why != NULL) {
        return imgstore_send_error(r, HTTP_BAD_REQUEST, why);
    }

    limits.max_file_bytes = (apr_size_t)max_size;
    limits.tailroom = IMGSTORE_TAG_BYTES;
    if (clen != NULL) {
        apr_off_t n;
        if (apr_strtoff(&n, clen, NULL, 10) == APR_SUCCESS && n > 0) {
            limits.size_hint = (apr_size_t)n;
        }
    }
    mp = imgstore_multipart_create(r->pool, boundary, &limits);
    status = read_body(r, mp, max_body, &why);
    if (status == AP_FILTER_ERROR) {
        return AP_FILTER_ERROR;
    }
    if (status != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, IMGLOGNO(00030) "upload refused: %s", why);
        return imgstore_send_error(r, status, why);
    }

    data = imgstore_multipart_file(mp, &size);
    type = imgstore_sniff(data, size);
    if (type == IMGSTORE_TYPE_NONE || type == IMGSTORE_TYPE_SVG ||
        !(imgstore_conf_allow_types(dc) & (int)IMGSTORE_TYPE_BIT(type))) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      IMGLOGNO(00031) "upload refused: type %s not allowed",
                      type == IMGSTORE_TYPE_NONE ? "unknown" : imgstore_type_name(type));
        return imgstore_send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE,
                                   type == IMGSTORE_TYPE_SVG ? "SVG is not accepted"
                                                             : "not an allowed image type");
    }

    if (imgstore_token_new(token) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, IMGLOGNO(00032) "the CSPRNG failed");
        return imgstore_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal error");
    }
    imgstore_token_id(token, id);
    memset(&ins, 0, sizeof(ins));
    ins.row.id = id;
    ins.row.key_id = imgstore_globals.active_key;
    ins.row.content_type = imgstore_type_mime(type);
    ins.row.size = (apr_int64_t)size;
    {
        /*
         * Rounded up to the second, so an image lives at least its TTL; it is
         * served while the clock is before expires_at, as the answer says.
         */
        apr_time_t now = apr_time_now();
        ins.row.created_at = (apr_int64_t)apr_time_sec(now);
        ins.row.expires_at =
            (apr_int64_t)apr_time_sec(now + apr_time_from_sec(ttl) + APR_USEC_PER_SEC - 1);
    }
    ins.max_total = imgstore_globals.max_total;
    aad.key_id = ins.row.key_id;
    aad.id = id;
    aad.content_type = ins.row.content_type;
    aad.expires_at = ins.row.expires_at;
    if (imgstore_seal(imgstore_globals.keyring, token, &aad, nonce, data, size) != APR_SUCCESS) {
        OPENSSL_cleanse(token, sizeof(token));
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, IMGLOGNO(00033) "encryption failed");
        return imgstore_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal error");
    }
    ins.row.nonce = nonce;
    ins.row.ciphertext = data;
    ins.row.ciphertext_len = size + IMGSTORE_TAG_BYTES;

    st = imgstore_db_run(r->server, r->pool, op_insert, &ins, &err);
    if (st == IMGSTORE_STORE_QUOTA) {
        OPENSSL_cleanse(token, sizeof(token));
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      IMGLOGNO(00034) "upload refused: ImgStoreMaxTotal reached");
        return imgstore_send_error(r, HTTP_INSUFFICIENT_STORAGE, "storage quota is full");
    }
    if (st != IMGSTORE_STORE_OK) {
        OPENSSL_cleanse(token, sizeof(token));
        return imgstore_send_db_error(r, st, err);
    }
    imgstore_token_encode(token, hash);
    OPENSSL_cleanse(token, sizeof(token));
    imgstore_counter_add(IMGSTORE_COUNTER_UPLOADS, 1);
    imgstore_counter_add(IMGSTORE_COUNTER_UPLOAD_BYTES, (apr_uint64_t)size);
    return answer_created(r, dc, hash, &ins.row, ttl);
}
