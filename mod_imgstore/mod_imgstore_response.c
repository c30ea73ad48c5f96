/* The answers every route shares, and the one map from core statuses to HTTP. */
#include "mod_imgstore_response.h"

#include <http_protocol.h>
#include <util_filter.h>

#include <apr_strings.h>

#include "imgstore_json.h"
#include "mod_imgstore_status.h"

imgstore_req_t *imgstore_req_find(request_rec *r)
{
    return ap_get_module_config(r->request_config, &imgstore_module);
}

imgstore_req_t *imgstore_req_get(request_rec *r)
{
    imgstore_req_t *req = imgstore_req_find(r);

    if (req == NULL) {
        req = apr_pcalloc(r->pool, sizeof(*req));
        req->mount = "";
        ap_set_module_config(r->request_config, &imgstore_module, req);
    }
    return req;
}

void imgstore_response_security_headers(request_rec *r)
{
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
}

int imgstore_response_json(request_rec *r, int status, const char *json, apr_size_t len)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);

    r->status = status;
    ap_set_content_type(r, "application/json");
    imgstore_response_security_headers(r);
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        APR_BRIGADE_INSERT_TAIL(
            bb, apr_bucket_pool_create(json, len, r->pool, r->connection->bucket_alloc));
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    return ap_pass_brigade(r->output_filters, bb) == APR_SUCCESS ? OK : AP_FILTER_ERROR;
}

int imgstore_response_error(request_rec *r, int status, const char *message)
{
    imgstore_json_t *j = imgstore_json_object(r->pool);
    const imgstore_req_t *req = imgstore_req_find(r);
    const char *body, *clen;
    apr_size_t len;

    imgstore_json_add_str(j, "error", message);
    body = imgstore_json_finish(j, &len);
    imgstore_status_count_answer(status);
    /*
     * Refusing a body we did not read: close the connection rather than let
     * httpd read a possibly huge body to its end to keep it alive.
     */
    clen = apr_table_get(r->headers_in, "Content-Length");
    if (status >= 400 && (req == NULL || !req->body_read) &&
        (apr_table_get(r->headers_in, "Transfer-Encoding") != NULL ||
         (clen != NULL && strcmp(clen, "0") != 0))) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    return imgstore_response_json(r, status, body, len);
}

int imgstore_response_status(imgstore_status_e st)
{
    switch (st) {
        case IMGSTORE_OK:
            return HTTP_OK;
        case IMGSTORE_NOTFOUND:
            return HTTP_NOT_FOUND;
        case IMGSTORE_INVALID:
            return HTTP_BAD_REQUEST;
        case IMGSTORE_TOO_LARGE:
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        case IMGSTORE_BAD_TYPE:
            return HTTP_UNSUPPORTED_MEDIA_TYPE;
        case IMGSTORE_QUOTA:
            return HTTP_INSUFFICIENT_STORAGE;
        case IMGSTORE_CONN:
        case IMGSTORE_SCHEMA:
            return HTTP_SERVICE_UNAVAILABLE;
        case IMGSTORE_DUPLICATE:
        case IMGSTORE_ERROR:
        case IMGSTORE_NOKEY:
        case IMGSTORE_TAMPERED:
        case IMGSTORE_INTERNAL:
        default:
            return HTTP_INTERNAL_SERVER_ERROR;
    }
}

int imgstore_response_fail(request_rec *r, imgstore_status_e st, const char *message,
                           const char *err)
{
    int status = imgstore_response_status(st);

    switch (st) {
        case IMGSTORE_CONN:
        case IMGSTORE_SCHEMA:
            apr_table_setn(r->headers_out, "Retry-After",
                           apr_itoa(r->pool, IMGSTORE_RETRY_AFTER_SECONDS));
            message = "storage temporarily unavailable, try again later";
            break;
        case IMGSTORE_DUPLICATE:
        case IMGSTORE_ERROR:
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, IMGLOGNO(00020) "database error: %s",
                          err ? err : "unknown");
            message = "internal error";
            break;
        default:
            if (status == HTTP_INTERNAL_SERVER_ERROR || message == NULL) {
                message = status == HTTP_INTERNAL_SERVER_ERROR ? "internal error"
                                                               : ap_get_status_line(status) + 4;
            }
            break;
    }
    return imgstore_response_error(r, status, message);
}
