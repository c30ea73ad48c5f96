/*
 * POST /upload: stream the multipart body through the parser, sniff the
 * type, seal the image in place and insert it in one statement. The body is
 * read completely before a database connection is taken.
 */
#include "mod_imgstore_upload.h"

#include <http_core.h>
#include <http_protocol.h>
#include <util_filter.h>

#include <apr_strings.h>

#include "imgstore_image.h"
#include "imgstore_json.h"
#include "imgstore_multipart.h"
#include "imgstore_value.h"
#include "mod_imgstore_db.h"
#include "mod_imgstore_expiry.h"
#include "mod_imgstore_response.h"
#include "mod_imgstore_cache.h"
#include "mod_imgstore_status.h"

#define READ_BLOCK (64 * 1024)
/* Multipart framing allowed on top of ImgStoreMaxSize before a body is "too large". */
#define IMGSTORE_BODY_OVERHEAD (64 * 1024)

typedef struct {
    imgstore_row_t row;
    apr_int64_t max_total;
    int attempts;
} insert_baton_t;

static imgstore_status_e op_insert(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    insert_baton_t *b = baton;
    imgstore_status_e st = imgstore_store_insert(conn, p, &b->row, b->max_total, err);

    /*
     * The id is 256 random bits: finding it taken on a retry means the first
     * attempt committed before its connection broke.
     */
    if (st == IMGSTORE_DUPLICATE && b->attempts++ > 0) {
        return IMGSTORE_OK;
    }
    b->attempts++;
    return st;
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
                    return imgstore_response_status(imgstore_multipart_status(st));
                }
            }
        }
        apr_brigade_cleanup(bb);
    }
    imgstore_req_get(r)->body_read = 1;
    st = imgstore_multipart_finish(mp);
    if (st != IMGSTORE_MP_DONE) {
        *why = imgstore_multipart_strerror(st);
        return imgstore_response_status(imgstore_multipart_status(st));
    }
    return OK;
}

/* The image's URL: the token's text under the mount. */
static const char *image_url(request_rec *r, const imgstore_dir_conf_t *dc, const char *token_text)
{
    if (dc->base_url != NULL) {
        return apr_pstrcat(r->pool, dc->base_url, "/image/", token_text, NULL);
    }
    return ap_construct_url(
        r->pool, apr_pstrcat(r->pool, imgstore_req_get(r)->mount, "/image/", token_text, NULL), r);
}

/* The answer's "hash" field is the token's text, as it goes into the URL. */
static int answer_created(request_rec *r, const imgstore_dir_conf_t *dc, const char *token_text,
                          const imgstore_row_t *row, apr_int64_t ttl)
{
    imgstore_json_t *j = imgstore_json_object(r->pool);
    const char *url = image_url(r, dc, token_text), *body;
    char expires[32];
    apr_size_t len;

    imgstore_value_format_iso8601(expires, row->expires_at);
    imgstore_json_add_str(j, "hash", token_text);
    imgstore_json_add_str(j, "url", url);
    imgstore_json_add_str(j, "expires_at", expires);
    imgstore_json_add_int(j, "expires_in", ttl);
    imgstore_json_add_int(j, "size", row->size);
    imgstore_json_add_str(j, "type", row->content_type);
    body = imgstore_json_finish(j, &len);
    apr_table_setn(r->headers_out, "Location", url);
    return imgstore_response_json(r, HTTP_CREATED, body, len);
}

/*
 * Before reading a byte: the Content-Length (-1 if absent or not a number)
 * must fit, and the body must be multipart/form-data. No 100-continue is
 * sent for a body refused here. OK or an HTTP status, *why set.
 */
static int check_request(request_rec *r, apr_off_t max_body, apr_off_t *clen, const char **boundary,
                         const char **why)
{
    const char *ctype = apr_table_get(r->headers_in, "Content-Type");
    const char *cl = apr_table_get(r->headers_in, "Content-Length");

    *clen = -1;
    if (cl != NULL && apr_strtoff(clen, cl, NULL, 10) != APR_SUCCESS) {
        *clen = -1;
    }
    if (*clen > max_body) {
        *why = "image too large";
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    *why = ctype ? imgstore_multipart_boundary(r->pool, ctype, boundary)
                 : "expected a multipart/form-data body with the image in field 'file'";
    return *why != NULL ? HTTP_BAD_REQUEST : OK;
}

/* The sniffed type, or BAD_TYPE with the client's message in *why. */
static imgstore_status_e check_type(request_rec *r, const imgstore_dir_conf_t *dc,
                                    const unsigned char *data, apr_size_t size,
                                    imgstore_type_e *type, const char **why)
{
    *type = imgstore_sniff(data, size);
    if (*type != IMGSTORE_TYPE_NONE && *type != IMGSTORE_TYPE_SVG &&
        (imgstore_conf_allow_types(dc) & (int)IMGSTORE_TYPE_BIT(*type))) {
        return IMGSTORE_OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  IMGLOGNO(00031) "upload refused: type %s not allowed",
                  *type == IMGSTORE_TYPE_NONE ? "unknown" : imgstore_type_name(*type));
    *why = *type == IMGSTORE_TYPE_SVG ? "SVG is not accepted" : "not an allowed image type";
    return IMGSTORE_BAD_TYPE;
}

int imgstore_upload_handle(request_rec *r, const imgstore_dir_conf_t *dc)
{
    const imgstore_settings_t *set = imgstore_conf_settings();
    apr_int64_t max_size = imgstore_conf_max_size(dc), ttl = imgstore_conf_ttl(dc);
    apr_off_t max_body = (apr_off_t)max_size + IMGSTORE_BODY_OVERHEAD, clen;
    const char *boundary = NULL, *why = NULL, *err = NULL;
    char token_text[IMGSTORE_TOKEN_CHARS + 1];
    imgstore_mp_limits_t limits = {0};
    imgstore_multipart_t *mp;
    const imgstore_image_chain_t *chain = NULL;
    imgstore_sealed_t sealed;
    insert_baton_t ins;
    imgstore_type_e type;
    unsigned char *data;
    apr_size_t size;
    imgstore_status_e st;
    int status;

    status = check_request(r, max_body, &clen, &boundary, &why);
    if (status != OK) {
        return imgstore_response_error(r, status, why);
    }
    limits.max_file_bytes = (apr_size_t)max_size;
    limits.tailroom = IMGSTORE_TAG_BYTES;
    limits.size_hint = clen > 0 ? (apr_size_t)clen : 0;
    mp = imgstore_multipart_create(r->pool, boundary, &limits);
    status = read_body(r, mp, max_body, &why);
    if (status == AP_FILTER_ERROR) {
        return AP_FILTER_ERROR;
    }
    if (status != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, IMGLOGNO(00030) "upload refused: %s", why);
        return imgstore_response_error(r, status, why);
    }

    data = imgstore_multipart_file(mp, &size);
    st = check_type(r, dc, data, size, &type, &why);
    if (st != IMGSTORE_OK) {
        return imgstore_response_fail(r, st, why, NULL);
    }
    status = imgstore_expiry_chain(r, &chain);
    if (status != OK) {
        return status;
    }
    if (imgstore_image_new(&sealed) != IMGSTORE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, IMGLOGNO(00032) "the CSPRNG failed");
        return imgstore_response_fail(r, IMGSTORE_INTERNAL, NULL, NULL);
    }
    st = imgstore_image_seal(&sealed, set->keyring, chain, set->active_key, type, apr_time_now(),
                             ttl, data, size);
    if (st != IMGSTORE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, IMGLOGNO(00033) "encryption failed");
        return imgstore_response_fail(r, IMGSTORE_INTERNAL, NULL, NULL);
    }
    memset(&ins, 0, sizeof(ins));
    ins.row = sealed.row;
    ins.max_total = set->max_total;
    st = imgstore_db_run(r->server, r->pool, op_insert, &ins, &err);
    if (st == IMGSTORE_QUOTA) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      IMGLOGNO(00034) "upload refused: ImgStoreMaxTotal reached");
    }
    if (st != IMGSTORE_OK) {
        imgstore_image_wipe(&sealed);
        return imgstore_response_fail(r, st, st == IMGSTORE_QUOTA ? "storage quota is full" : NULL,
                                      err);
    }
    imgstore_cache_put(r->server, r->pool, &sealed.row);
    imgstore_token_encode(sealed.token, token_text);
    imgstore_image_wipe(&sealed);
    imgstore_status_count(IMGSTORE_COUNTER_UPLOADS, 1);
    imgstore_status_count(IMGSTORE_COUNTER_UPLOAD_BYTES, (apr_uint64_t)size);
    return answer_created(r, dc, token_text, &ins.row, ttl);
}
