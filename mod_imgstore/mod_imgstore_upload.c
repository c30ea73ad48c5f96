/*
 * POST /upload: stream the multipart body through the parser (or, for a raw
 * upload -- PUT, or POST of an image/... or application/octet-stream body --
 * collect the body itself), sniff the type, apply the user controls (ttl,
 * max_views, strip_metadata; the pixel guard), seal the image in place and
 * insert it in one statement. The body is read completely before a database
 * connection is taken.
 */
#include "mod_imgstore_upload.h"

#include <http_core.h>
#include <http_protocol.h>
#include <util_filter.h>

#include <apr_strings.h>

#include <openssl/crypto.h>

#include "imgstore_image.h"
#include "imgstore_json.h"
#include "imgstore_multipart.h"
#include "imgstore_pixels.h"
#include "imgstore_strip.h"
#include "imgstore_value.h"
#include "imgstore_wipe.h"
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
 * A raw upload's body: one malloc()ed buffer with tailroom for the tag,
 * grown by doubling (never realloc: a moved block would leave plaintext
 * behind), wiped before it is freed.
 */
typedef struct {
    unsigned char *buf;
    apr_size_t len, cap, max; /* max: the largest image */
} raw_body_t;

static apr_status_t raw_free(void *data)
{
    raw_body_t *rb = data;

    if (rb->buf != NULL) {
        imgstore_wipe(rb->buf, rb->cap);
        free(rb->buf);
        rb->buf = NULL;
    }
    return APR_SUCCESS;
}

static int raw_append(raw_body_t *rb, const char *data, apr_size_t len, const char **why)
{
    if (len > rb->max - rb->len) {
        *why = "image too large";
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (rb->len + len + IMGSTORE_TAG_BYTES > rb->cap) {
        apr_size_t ncap = rb->cap ? rb->cap : 64 * 1024;
        unsigned char *nbuf;

        while (ncap < rb->len + len + IMGSTORE_TAG_BYTES) {
            ncap *= 2;
        }
        if (ncap > rb->max + IMGSTORE_TAG_BYTES) {
            ncap = rb->max + IMGSTORE_TAG_BYTES;
        }
        nbuf = malloc(ncap);
        if (nbuf == NULL) {
            *why = "out of memory";
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (rb->buf != NULL) {
            memcpy(nbuf, rb->buf, rb->len);
        }
        raw_free(rb);
        rb->buf = nbuf;
        rb->cap = ncap;
    }
    memcpy(rb->buf + rb->len, data, len);
    rb->len += len;
    return OK;
}

/*
 * Read the whole body into the parser (mp) or the raw buffer (rb). Returns
 * OK, or an HTTP status to answer with (*why set), or AP_FILTER_ERROR when
 * httpd already answered. A body that ends before its Content-Length (clen,
 * -1 when absent) is incomplete (RFC 9112, 6.3): 400, nothing stored.
 */
static int read_body(request_rec *r, imgstore_multipart_t *mp, raw_body_t *rb, apr_off_t clen,
                     apr_off_t max_body, const char **why)
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
                   : rv == APR_EOF || rv == APR_INCOMPLETE
                       ? "the request body ended before its Content-Length"
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
            if (rb != NULL) {
                int status = raw_append(rb, data, len, why);
                if (status != OK) {
                    return status;
                }
                continue;
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
    if (clen >= 0 && total != clen) {
        r->connection->keepalive = AP_CONN_CLOSE;
        *why = "the request body ended before its Content-Length";
        return HTTP_BAD_REQUEST;
    }
    if (rb != NULL) {
        return OK;
    }
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
                          const char *delete_text, const imgstore_row_t *row, apr_int64_t ttl,
                          int stripped)
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
    if (row->views_left > 0) {
        imgstore_json_add_int(j, "max_views", row->views_left);
    } else {
        imgstore_json_add_null(j, "max_views");
    }
    imgstore_json_add_bool(j, "metadata_stripped", stripped);
    imgstore_json_add_str(j, "delete_token", delete_text);
    body = imgstore_json_finish(j, &len);
    apr_table_setn(r->headers_out, "Location", url);
    return imgstore_response_json(r, HTTP_CREATED, body, len);
}

/*
 * Before reading a byte: the Content-Length (-1 if absent; digits only, else 400)
 * must fit, and the body must be multipart/form-data. No 100-continue is
 * sent for a body refused here. OK or an HTTP status, *why set.
 */
static int check_request(request_rec *r, apr_off_t max_body, apr_off_t *clen, const char **boundary,
                         int *raw, const char **why)
{
    const char *ctype = apr_table_get(r->headers_in, "Content-Type");
    const char *cl = apr_table_get(r->headers_in, "Content-Length");

    *clen = -1;
    if (cl != NULL && !imgstore_value_content_length(cl, clen)) {
        *why = "bad Content-Length";
        return HTTP_BAD_REQUEST;
    }
    /* A chunked body has no Content-Length to end early against. */
    if (apr_table_get(r->headers_in, "Transfer-Encoding") != NULL) {
        *clen = -1;
    }
    if (*clen > max_body) {
        *why = "image too large";
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    /* Raw: PUT, or POST of an image/... or application/octet-stream body. */
    *raw = r->method_number == M_PUT ||
           (ctype != NULL && (!strncasecmp(ctype, "image/", 6) ||
                              !strncasecmp(ctype, "application/octet-stream", 24)));
    if (*raw) {
        *why = NULL;
        return OK;
    }
    *why = ctype ? imgstore_multipart_boundary(r->pool, ctype, boundary)
                 : "expected a multipart/form-data body with the image in field 'file'";
    if (*why != NULL && ctype != NULL) {
        *why = apr_pstrcat(r->pool, *why,
                           ": send multipart/form-data with the image in field 'file', or the "
                           "image itself as an image/* body (POST) or with PUT",
                           NULL);
    }
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

/* The user controls of one upload: form fields of a multipart body, or query parameters. */
typedef struct {
    apr_int64_t ttl;   /* seconds */
    apr_int64_t views; /* 0: no limit */
    int strip;
} controls_t;

static int count_value(void *rec, const char *key, const char *value)
{
    (void)key;
    (void)value;
    ++*(int *)rec;
    return 1;
}

/*
 * A control's value from the form (mp, NULL for a raw upload) or the query
 * string (args, may be NULL); NULL when absent. 400 (*why set) when it comes
 * twice, is too long or holds a NUL.
 */
static int control_value(request_rec *r, imgstore_multipart_t *mp, apr_table_t *args,
                         const char *name, const char **value, const char **why)
{
    const char *field = NULL;
    int n = 0;

    if (mp != NULL) {
        imgstore_mp_field_e f = imgstore_multipart_field(mp, name, &field);
        if (f == IMGSTORE_MP_FIELD_BAD) {
            *why = apr_psprintf(r->pool, "field '%s' is given twice or is not a short value", name);
            return HTTP_BAD_REQUEST;
        }
        n = f == IMGSTORE_MP_FIELD_OK;
    }
    if (args != NULL) {
        apr_table_do(count_value, &n, args, name, NULL);
        if (field == NULL) {
            field = apr_table_get(args, name);
        }
    }
    if (n > 1) {
        *why = apr_psprintf(r->pool, "'%s' is given more than once", name);
        return HTTP_BAD_REQUEST;
    }
    *value = field;
    return OK;
}

/* The query string's parameters, every occurrence kept (ap_args_to_table keeps one). */
static apr_table_t *query_table(request_rec *r, const char *query)
{
    apr_table_t *t = apr_table_make(r->pool, 4);
    char *rest = apr_pstrdup(r->pool, query), *pair, *state = NULL;

    for (pair = apr_strtok(rest, "&", &state); pair != NULL; pair = apr_strtok(NULL, "&", &state)) {
        char *eq = strchr(pair, '=');

        if (eq != NULL) {
            *eq++ = '\0';
        }
        /* A value that does not decode (a NUL, a bad escape) stays present and invalid. */
        if (ap_unescape_urlencoded(pair) == OK) {
            apr_table_addn(t, pair,
                           eq == NULL                         ? ""
                           : ap_unescape_urlencoded(eq) == OK ? eq
                                                              : "%invalid");
        }
    }
    return t;
}

static int read_controls(request_rec *r, const imgstore_dir_conf_t *dc, const char *query,
                         imgstore_multipart_t *mp, controls_t *c, const char **why)
{
    apr_int64_t max_ttl = imgstore_conf_max_ttl(dc);
    imgstore_strip_mode_e mode = imgstore_conf_strip(dc);
    apr_table_t *args = NULL;
    const char *v;
    int status, on;

    if (query != NULL) {
        args = query_table(r, query);
    }
    c->ttl = imgstore_conf_ttl(dc);
    c->views = 0;
    c->strip = mode != IMGSTORE_STRIP_OFF;
    if ((status = control_value(r, mp, args, "ttl", &v, why)) != OK) {
        return status;
    }
    if (v != NULL && imgstore_value_parse_ttl(v, max_ttl, &c->ttl) != NULL) {
        *why = apr_psprintf(r->pool,
                            "ttl must be a duration from 1s to %" APR_INT64_T_FMT
                            "s (ImgStoreMaxTTL), such as 300, 90s, 10m, 2h or 1d",
                            max_ttl);
        return HTTP_BAD_REQUEST;
    }
    if ((status = control_value(r, mp, args, "max_views", &v, why)) != OK) {
        return status;
    }
    if (v != NULL && imgstore_value_parse_views(v, &c->views) != NULL) {
        *why = "max_views must be an integer from 1 to 1000000";
        return HTTP_BAD_REQUEST;
    }
    if ((status = control_value(r, mp, args, "strip_metadata", &v, why)) != OK) {
        return status;
    }
    if (v != NULL) {
        if (imgstore_value_parse_bool(v, &on) != NULL) {
            *why = "strip_metadata must be 1 or 0 (true/false, on/off)";
            return HTTP_BAD_REQUEST;
        }
        /* "always" strips whatever the upload says. */
        c->strip = mode == IMGSTORE_STRIP_ALWAYS || on;
    }
    return OK;
}

/*
 * After the type check, before sealing: the pixel guard, then stripping.
 * *size becomes what is stored; *stripped whether the stripper ran on it.
 */
static imgstore_status_e prepare_image(request_rec *r, const imgstore_dir_conf_t *dc,
                                       imgstore_type_e type, int strip, unsigned char *data,
                                       apr_size_t *size, int *stripped, const char **why)
{
    apr_int64_t max_pixels = imgstore_conf_max_pixels(dc);
    apr_uint64_t pixels = 0;
    apr_size_t out_len = 0;
    imgstore_strip_e st;

    *stripped = 0;
    if (imgstore_pixels(type, data, *size, &pixels) && pixels > (apr_uint64_t)max_pixels) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      IMGLOGNO(00101) "upload refused: %" APR_UINT64_T_FMT " pixels declared",
                      pixels);
        *why =
            apr_psprintf(r->pool,
                         "image declares %" APR_UINT64_T_FMT
                         " pixels, more than the %" APR_INT64_T_FMT " allowed (ImgStoreMaxPixels)",
                         pixels, max_pixels);
        return IMGSTORE_BAD_TYPE;
    }
    if (!strip) {
        return IMGSTORE_OK;
    }
    st = imgstore_strip(type, data, *size, data, &out_len);
    if (st == IMGSTORE_STRIP_MALFORMED) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      IMGLOGNO(00102) "upload refused: %s too malformed to strip",
                      imgstore_type_name(type));
        *why = "the image is malformed: its metadata cannot be removed";
        return IMGSTORE_BAD_TYPE;
    }
    if (st == IMGSTORE_STRIP_STRIPPED || st == IMGSTORE_STRIP_UNCHANGED) {
        *size = out_len;
        *stripped = 1;
    }
    return IMGSTORE_OK;
}

int imgstore_upload_handle(request_rec *r, const imgstore_dir_conf_t *dc, const char *args)
{
    const imgstore_settings_t *set = imgstore_conf_settings(r->server);
    apr_int64_t max_size = imgstore_conf_max_size(dc);
    apr_off_t max_body = (apr_off_t)max_size + IMGSTORE_BODY_OVERHEAD, clen;
    const char *boundary = NULL, *why = NULL, *err = NULL;
    char token_text[IMGSTORE_TOKEN_CHARS + 1], delete_text[IMGSTORE_TOKEN_CHARS + 1];
    imgstore_mp_limits_t limits = {0};
    imgstore_multipart_t *mp = NULL;
    raw_body_t *rb = NULL;
    const imgstore_image_chain_t *chain = NULL;
    imgstore_sealed_t sealed;
    insert_baton_t ins;
    imgstore_type_e type;
    controls_t ctl;
    unsigned char *data;
    apr_size_t size;
    imgstore_status_e st;
    int status, raw = 0, stripped;

    status = check_request(r, max_body, &clen, &boundary, &raw, &why);
    if (status != OK) {
        return imgstore_response_error(r, status, why);
    }
    if (raw) {
        rb = apr_pcalloc(r->pool, sizeof(*rb));
        rb->max = (apr_size_t)max_size;
        apr_pool_cleanup_register(r->pool, rb, raw_free, apr_pool_cleanup_null);
    } else {
        limits.max_file_bytes = (apr_size_t)max_size;
        limits.tailroom = IMGSTORE_TAG_BYTES;
        limits.size_hint = clen > 0 ? (apr_size_t)clen : 0;
        mp = imgstore_multipart_create(r->pool, boundary, &limits);
    }
    status = read_body(r, mp, rb, clen, max_body, &why);
    if (status == OK) {
        status = read_controls(r, dc, args, mp, &ctl, &why);
    }
    if (status == AP_FILTER_ERROR) {
        return AP_FILTER_ERROR;
    }
    if (status != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, IMGLOGNO(00030) "upload refused: %s", why);
        return imgstore_response_error(r, status, why);
    }

    if (rb != NULL) {
        data = rb->buf;
        size = rb->len;
    } else {
        data = imgstore_multipart_file(mp, &size);
    }
    st = data != NULL ? check_type(r, dc, data, size, &type, &why) : IMGSTORE_BAD_TYPE;
    if (data == NULL) {
        why = "empty body: not an image";
    }
    if (st == IMGSTORE_OK) {
        st = prepare_image(r, dc, type, ctl.strip, data, &size, &stripped, &why);
    }
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
                             ctl.ttl, data, size);
    if (st != IMGSTORE_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, IMGLOGNO(00033) "encryption failed");
        return imgstore_response_fail(r, IMGSTORE_INTERNAL, NULL, NULL);
    }
    sealed.row.views_left = ctl.views;
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
    imgstore_token_encode(sealed.delete_token, delete_text);
    imgstore_image_wipe(&sealed);
    imgstore_status_count(IMGSTORE_COUNTER_UPLOADS, 1);
    imgstore_status_count(IMGSTORE_COUNTER_UPLOAD_BYTES, (apr_uint64_t)size);
    status = answer_created(r, dc, token_text, delete_text, &ins.row, ctl.ttl, stripped);
    OPENSSL_cleanse(delete_text, sizeof(delete_text));
    return status;
}
