/* Routing under the mount, and the answers every route shares. */
#include "mod_imgstore.h"

#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include <apr_strings.h>

#include "imgstore_json.h"

typedef enum { ROUTE_NONE = 0, ROUTE_UPLOAD, ROUTE_IMAGE, ROUTE_CLEANUP, ROUTE_HEALTH } route_e;

typedef struct {
    route_e route;
    const char *mount; /* the prefix the route was found under */
    const char *hash;  /* ROUTE_IMAGE: the path segment after /image/ */
} route_t;

#define IMAGE_PREFIX "/image/"

static route_e route_of(const char *path, const char **hash)
{
    if (!strcmp(path, "/upload")) {
        return ROUTE_UPLOAD;
    }
    if (!strcmp(path, "/cleanup")) {
        return ROUTE_CLEANUP;
    }
    if (!strcmp(path, "/health")) {
        return ROUTE_HEALTH;
    }
    if (!strncmp(path, IMAGE_PREFIX, sizeof(IMAGE_PREFIX) - 1)) {
        *hash = path + sizeof(IMAGE_PREFIX) - 1;
        return ROUTE_IMAGE;
    }
    return ROUTE_NONE;
}

/* The rest of the URI under mount m, or NULL when m is not a path-segment prefix of it. */
static const char *under_mount(const char *uri, const char *m)
{
    apr_size_t len = strlen(m);

    while (len > 0 && m[len - 1] == '/') {
        len--;
    }
    if (strncmp(uri, m, len) != 0 || (uri[len] != '/' && uri[len] != '\0')) {
        return NULL;
    }
    return uri + len;
}

/*
 * Routes are relative to the <Location> that set the handler. httpd keeps
 * no record of which section that was; core's merged config does hold the
 * path of the innermost section that applied (the <Location>, since those
 * merge last), and sections holding our own directives are candidates too.
 * The first candidate under which the rest of the path names a route wins.
 */
static route_t find_route(request_rec *r, const imgstore_dir_conf_t *dc)
{
    core_dir_config *core = ap_get_core_module_config(r->per_dir_config);
    route_t rt = {ROUTE_NONE, NULL, NULL};
    int i;

    for (i = -1; i < dc->mounts->nelts; i++) {
        const char *m = i < 0 ? core->d : APR_ARRAY_IDX(dc->mounts, i, const char *);
        const char *rest = m ? under_mount(r->uri, m) : NULL;
        const char *hash = NULL;
        route_e route;

        if (rest == NULL) {
            continue;
        }
        route = route_of(rest, &hash);
        if (rt.mount == NULL || route != ROUTE_NONE) {
            rt.route = route;
            rt.mount = apr_pstrmemdup(r->pool, m, (apr_size_t)(rest - r->uri));
            rt.hash = hash;
        }
        if (route != ROUTE_NONE) {
            break;
        }
    }
    return rt;
}

const char *imgstore_mount_of(request_rec *r)
{
    const char *m = apr_table_get(r->notes, "imgstore-mount");
    return m ? m : "";
}

void imgstore_security_headers(request_rec *r)
{
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
}

int imgstore_send_json(request_rec *r, int status, const char *json, apr_size_t len)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);

    r->status = status;
    ap_set_content_type(r, "application/json");
    imgstore_security_headers(r);
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        APR_BRIGADE_INSERT_TAIL(
            bb, apr_bucket_pool_create(json, len, r->pool, r->connection->bucket_alloc));
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    return ap_pass_brigade(r->output_filters, bb) == APR_SUCCESS ? OK : AP_FILTER_ERROR;
}

int imgstore_send_error(request_rec *r, int status, const char *message)
{
    imgstore_json_t *j = imgstore_json_object(r->pool);
    const char *body;
    apr_size_t len;

    imgstore_json_add_str(j, "error", message);
    body = imgstore_json_finish(j, &len);
    imgstore_counter_for_status(status);
    /*
     * Refusing a body we did not read: close the connection rather than let
     * httpd read a possibly huge body to its end to keep it alive.
     */
    if (status >= 400 && apr_table_get(r->notes, "imgstore-body-read") == NULL &&
        (apr_table_get(r->headers_in, "Transfer-Encoding") != NULL ||
         (apr_table_get(r->headers_in, "Content-Length") != NULL &&
          strcmp(apr_table_get(r->headers_in, "Content-Length"), "0") != 0))) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    return imgstore_send_json(r, status, body, len);
}

int imgstore_send_db_error(request_rec *r, imgstore_store_status_e st, const char *err)
{
    switch (st) {
        case IMGSTORE_STORE_CONN:
        case IMGSTORE_STORE_SCHEMA:
            apr_table_setn(r->headers_out, "Retry-After",
                           apr_itoa(r->pool, IMGSTORE_RETRY_AFTER_SECONDS));
            return imgstore_send_error(r, HTTP_SERVICE_UNAVAILABLE,
                                       "storage temporarily unavailable, try again later");
        default:
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, IMGLOGNO(00020) "database error: %s",
                          err ? err : "unknown");
            return imgstore_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal error");
    }
}

static imgstore_store_status_e op_cleanup(server_rec *s, apr_pool_t *p, apr_int64_t *deleted,
                                          const char **err)
{
    return imgstore_cleanup_pass(s, p, 1, 5000, deleted, err);
}

static int handle_cleanup(request_rec *r)
{
    imgstore_json_t *j;
    apr_int64_t deleted = 0;
    const char *err = NULL, *body;
    apr_size_t len;
    imgstore_store_status_e st = op_cleanup(r->server, r->pool, &deleted, &err);

    if (st != IMGSTORE_STORE_OK) {
        return imgstore_send_db_error(r, st, err);
    }
    j = imgstore_json_object(r->pool);
    imgstore_json_add_int(j, "deleted", deleted);
    body = imgstore_json_finish(j, &len);
    return imgstore_send_json(r, HTTP_OK, body, len);
}

static imgstore_store_status_e op_health(PGconn *conn, apr_pool_t *p, void *baton, const char **err)
{
    int *version = baton;
    return imgstore_store_schema_version(conn, p, version, err);
}

static int handle_health(request_rec *r)
{
    imgstore_json_t *j = imgstore_json_object(r->pool);
    int version = 0;
    const char *err = NULL, *body;
    apr_size_t len;
    imgstore_store_status_e st = imgstore_db_run(r->server, r->pool, op_health, &version, &err);

    if (st == IMGSTORE_STORE_OK) {
        imgstore_json_add_str(j, "status", "ok");
        imgstore_json_add_str(j, "database", "ok");
        imgstore_json_add_int(j, "schema_version", version);
        body = imgstore_json_finish(j, &len);
        return imgstore_send_json(r, HTTP_OK, body, len);
    }
    imgstore_json_add_str(j, "status", "unavailable");
    imgstore_json_add_str(j, "database",
                          st == IMGSTORE_STORE_SCHEMA ? "schema out of date" : "unreachable");
    body = imgstore_json_finish(j, &len);
    apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, IMGSTORE_RETRY_AFTER_SECONDS));
    return imgstore_send_json(r, HTTP_SERVICE_UNAVAILABLE, body, len);
}

static const char *allow_of(route_e route)
{
    switch (route) {
        case ROUTE_UPLOAD:
            return "POST, OPTIONS";
        case ROUTE_IMAGE:
        case ROUTE_CLEANUP:
        case ROUTE_HEALTH:
            return "GET, HEAD, OPTIONS";
        default:
            return NULL;
    }
}

static int method_allowed(route_e route, int m)
{
    if (m == M_OPTIONS) {
        return 1;
    }
    /* httpd reports HEAD as M_GET with header_only set. */
    return route == ROUTE_UPLOAD ? m == M_POST : m == M_GET;
}

static int imgstore_handler(request_rec *r)
{
    imgstore_dir_conf_t *dc;
    route_t rt;
    const char *allow;

    if (r->handler == NULL || strcmp(r->handler, IMGSTORE_HANDLER) != 0) {
        return DECLINED;
    }
    dc = ap_get_module_config(r->per_dir_config, &imgstore_module);
    rt = find_route(r, dc);
    if (rt.route == ROUTE_IMAGE || rt.route == ROUTE_NONE) {
        /*
         * First thing: nothing may log this request before the token is gone.
         * Unknown paths too: "/image/%2e%2e/<token>" is no image route any more.
         */
        imgstore_redact_token(r, rt.mount);
    }
    /* Ask for a cleanup attempt once the answer is out (log_transaction). */
    ap_set_module_config(r->request_config, &imgstore_module, (void *)1);
    if (rt.mount == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      IMGLOGNO(00022) "SetHandler imgstore works only in a <Location> section "
                                      "(not <LocationMatch>, <Directory>, <Files> or .htaccess)");
        return imgstore_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "server misconfigured");
    }
    apr_table_setn(r->notes, "imgstore-mount", rt.mount);

    if (rt.route == ROUTE_NONE) {
        return imgstore_send_error(r, HTTP_NOT_FOUND, "not found");
    }
    allow = allow_of(rt.route);
    r->allowed = 0;
    if (!method_allowed(rt.route, r->method_number)) {
        apr_table_setn(r->headers_out, "Allow", allow);
        return imgstore_send_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    if (r->method_number == M_OPTIONS) {
        apr_table_setn(r->headers_out, "Allow", allow);
        imgstore_security_headers(r);
        r->status = HTTP_NO_CONTENT;
        return OK;
    }
    if (imgstore_globals.keyring == NULL || imgstore_globals.active_key == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      IMGLOGNO(00021) "no ImgStoreKeyFile is configured");
        return imgstore_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "server not configured");
    }
    switch (rt.route) {
        case ROUTE_UPLOAD:
            return imgstore_handle_upload(r, dc);
        case ROUTE_IMAGE:
            return imgstore_handle_image(r, dc, rt.hash);
        case ROUTE_CLEANUP:
            return handle_cleanup(r);
        case ROUTE_HEALTH:
            return handle_health(r);
        default:
            return imgstore_send_error(r, HTTP_NOT_FOUND, "not found");
    }
}

/* r->filename of a request claimed at translate time (mod_proxy uses "proxy:" likewise). */
#define CLAIMED_PREFIX "imgstore:"

/*
 * Requests under the handler name no file: claim them at translate time,
 * while the <Location> config is merged, so core neither maps them to the
 * filesystem (no stat() per path segment, no .htaccess) nor logs "Cannot map
 * ... to file" lines quoting a path that may hold a token. Runs after
 * mod_rewrite and mod_alias, which keep their say.
 */
static int imgstore_translate_name(request_rec *r)
{
    core_dir_config *core = ap_get_core_module_config(r->per_dir_config);
    const char *handler, *err = NULL;

    if (r->main != NULL || core->expr_handler == NULL) {
        return DECLINED;
    }
    handler = ap_expr_str_exec(r, core->expr_handler, &err);
    if (err != NULL || handler == NULL || strcmp(handler, IMGSTORE_HANDLER) != 0) {
        return DECLINED;
    }
    r->filename = apr_pstrcat(r->pool, CLAIMED_PREFIX, r->uri, NULL);
    return OK;
}

static int imgstore_map_to_storage(request_rec *r)
{
    if (r->filename == NULL || strncmp(r->filename, CLAIMED_PREFIX, sizeof(CLAIMED_PREFIX) - 1)) {
        return DECLINED;
    }
    return OK;
}

static int imgstore_log_transaction(request_rec *r)
{
    if (ap_get_module_config(r->request_config, &imgstore_module) != NULL) {
        imgstore_cleanup_after_request(r);
    }
    return DECLINED;
}

void imgstore_register_handler_hooks(void)
{
    ap_hook_handler(imgstore_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(imgstore_translate_name, NULL, NULL, APR_HOOK_LAST);
    ap_hook_map_to_storage(imgstore_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    /* After mod_log_config has written the access log line. */
    ap_hook_log_transaction(imgstore_log_transaction, NULL, NULL, APR_HOOK_LAST);
}
