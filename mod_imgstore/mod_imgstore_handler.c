/*
 * Claiming requests under the mount and routing them: which section is the
 * mount, which route, which method; tokens are cut out of the request
 * before anything logs it. The routes themselves live with their areas.
 */
#include "mod_imgstore_handler.h"

#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <scoreboard.h>

#include <apr_strings.h>

#include "imgstore_route.h"
#include "mod_imgstore_cleanup.h"
#include "mod_imgstore_config.h"
#include "mod_imgstore_db.h"
#include "mod_imgstore_image.h"
#include "mod_imgstore_page.h"
#include "mod_imgstore_response.h"
#include "mod_imgstore_upload.h"

typedef struct {
    imgstore_route_e route;
    const char *mount;      /* the prefix the route was found under */
    const char *token_text; /* IMGSTORE_ROUTE_IMAGE: the path segment after /image/ */
} route_t;

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
    route_t rt = {IMGSTORE_ROUTE_NONE, NULL, NULL};
    int i;

    for (i = -1; i < dc->mounts->nelts; i++) {
        const char *m = i < 0 ? core->d : APR_ARRAY_IDX(dc->mounts, i, const char *);
        const char *rest = m ? imgstore_route_under(r->uri, m) : NULL;
        const char *token_text = NULL;
        imgstore_route_e route;

        if (rest == NULL) {
            continue;
        }
        route = imgstore_route_parse(rest, &token_text);
        if (rt.mount == NULL || route != IMGSTORE_ROUTE_NONE) {
            rt.route = route;
            rt.mount = apr_pstrmemdup(r->pool, m, (apr_size_t)(rest - r->uri));
            rt.token_text = token_text;
        }
        if (route != IMGSTORE_ROUTE_NONE) {
            break;
        }
    }
    return rt;
}

/*
 * Keep whole tokens out of access logs, error logs and server-status: every
 * copy of the request line, URI and query httpd keeps gets each long path
 * segment under the mount cut (imgstore_route_redact), the query's long
 * runs too, and the scoreboard's copy is refreshed. keep names the path
 * segments that stay: the mount's, or the whole path for routes with no
 * token in it (only their query is cut).
 */
static void redact_request(request_rec *r, const char *keep)
{
    r->the_request = imgstore_route_redact(r->pool, r->the_request, 1, keep);
    r->unparsed_uri = imgstore_route_redact(r->pool, r->unparsed_uri, 0, keep);
    r->uri = imgstore_route_redact(r->pool, r->uri, 0, keep);
    r->parsed_uri.path = imgstore_route_redact(r->pool, r->parsed_uri.path, 0, keep);
    r->parsed_uri.query = imgstore_route_redact_query(r->pool, r->parsed_uri.query);
    r->parsed_uri.fragment = imgstore_route_redact_query(r->pool, r->parsed_uri.fragment);
    r->args = imgstore_route_redact_query(r->pool, r->args);
    r->filename = imgstore_route_redact(r->pool, r->filename, 0, keep);
    r->canonical_filename = imgstore_route_redact(r->pool, r->canonical_filename, 0, keep);
    r->path_info = imgstore_route_redact(r->pool, r->path_info, 0, keep);
    if (r->connection->sbh != NULL) {
        ap_update_child_status(r->connection->sbh, SERVER_BUSY_WRITE, r);
    }
}

/* The route found (and the request redacted) when the request was claimed. */
#define ROUTE_KEY "imgstore-route"

/* Finds the route on the URI as the client sent it, keeps it, then redacts the request. */
static route_t *route_and_redact(request_rec *r, const imgstore_dir_conf_t *dc)
{
    route_t *rt = apr_palloc(r->pool, sizeof(*rt));

    *rt = find_route(r, dc);
    if (rt->token_text != NULL) {
        rt->token_text = apr_pstrdup(r->pool, rt->token_text);
    }
    apr_pool_userdata_setn(rt, ROUTE_KEY, NULL, r->pool);
    redact_request(r, rt->route == IMGSTORE_ROUTE_IMAGE || rt->route == IMGSTORE_ROUTE_NONE
                          ? rt->mount
                          : apr_pstrdup(r->pool, r->uri));
    return rt;
}

static int method_allowed(imgstore_route_e route, int m)
{
    if (m == M_OPTIONS) {
        return 1;
    }
    /* httpd reports HEAD as M_GET with header_only set. */
    if (route == IMGSTORE_ROUTE_UPLOAD) {
        return m == M_POST || m == M_PUT;
    }
    return m == M_GET || (route == IMGSTORE_ROUTE_IMAGE && m == M_DELETE);
}

static int imgstore_handler(request_rec *r)
{
    imgstore_dir_conf_t *dc;
    imgstore_req_t *req;
    route_t rt;
    void *claimed = NULL;
    const char *allow;

    if (r->handler == NULL || strcmp(r->handler, IMGSTORE_HANDLER) != 0) {
        return DECLINED;
    }
    dc = ap_get_module_config(r->per_dir_config, &imgstore_module);
    /*
     * Redacted when claimed at translate time; a request that another module
     * translated (mod_rewrite, mod_alias) is redacted here, first thing.
     */
    apr_pool_userdata_get(&claimed, ROUTE_KEY, r->pool);
    rt = claimed != NULL ? *(route_t *)claimed : *route_and_redact(r, dc);
    if (rt.route == IMGSTORE_ROUTE_PAGE && !imgstore_conf_upload_page(dc)) {
        rt.route = IMGSTORE_ROUTE_NONE; /* ImgStoreUploadPage off: the mount is no route */
    }
    /* The request state also asks for a cleanup attempt once the answer is out. */
    req = imgstore_req_get(r);
    if (rt.mount == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      IMGLOGNO(00022) "SetHandler imgstore works only in a <Location> section "
                                      "(not <LocationMatch>, <Directory>, <Files> or .htaccess)");
        return imgstore_response_error(r, HTTP_INTERNAL_SERVER_ERROR, "server misconfigured");
    }
    req->mount = rt.mount;

    if (rt.route == IMGSTORE_ROUTE_NONE) {
        return imgstore_response_error(r, HTTP_NOT_FOUND, "not found");
    }
    allow = imgstore_route_allow(rt.route);
    r->allowed = 0;
    if (!method_allowed(rt.route, r->method_number)) {
        apr_table_setn(r->headers_out, "Allow", allow);
        return imgstore_response_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    if (r->method_number == M_OPTIONS) {
        apr_table_setn(r->headers_out, "Allow", allow);
        imgstore_response_security_headers(r);
        r->status = HTTP_NO_CONTENT;
        return OK;
    }
    if (imgstore_conf_settings(r->server)->keyring == NULL ||
        imgstore_conf_settings(r->server)->active_key == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      IMGLOGNO(00021) "no ImgStoreKeyFile is configured");
        return imgstore_response_error(r, HTTP_INTERNAL_SERVER_ERROR, "server not configured");
    }
    switch (rt.route) {
        case IMGSTORE_ROUTE_UPLOAD:
            return imgstore_upload_handle(r, dc);
        case IMGSTORE_ROUTE_IMAGE:
            if (r->method_number == M_DELETE) {
                return imgstore_image_delete(r, rt.token_text);
            }
            return imgstore_image_handle(r, dc, rt.token_text);
        case IMGSTORE_ROUTE_CLEANUP:
            return imgstore_cleanup_handle(r);
        case IMGSTORE_ROUTE_HEALTH:
            return imgstore_db_handle_health(r);
        case IMGSTORE_ROUTE_PAGE:
            return imgstore_page_handle(r, dc);
        default:
            return imgstore_response_error(r, HTTP_NOT_FOUND, "not found");
    }
}

/* r->filename of a request claimed at translate time (mod_proxy uses "proxy:" likewise). */
#define CLAIMED_PREFIX "imgstore:"

/*
 * Requests under the handler name no file: claim them at translate time,
 * while the <Location> config is merged, so core neither maps them to the
 * filesystem (no stat() per path segment, no .htaccess) nor logs "Cannot map
 * ... to file" lines quoting a path that may hold a token. Runs after
 * mod_rewrite and mod_alias, which keep their say. Claiming redacts the
 * request (path and query) before the access checks, so whatever answers it
 * (403 of Require ip, 401 of Basic auth, 404, 405) logs no whole token.
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
    route_and_redact(r, ap_get_module_config(r->per_dir_config, &imgstore_module));
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

/*
 * The delete token travels in X-Delete-Token: take it out of the request's
 * headers before httpd logs them (core dumps every request header at
 * trace4 right after this hook) and keep it where only DELETE finds it.
 */
static int imgstore_post_read_request(request_rec *r)
{
    const char *token;

    if (r->method_number != M_DELETE ||
        (token = apr_table_get(r->headers_in, IMGSTORE_DELETE_HEADER)) == NULL) {
        return DECLINED;
    }
    apr_pool_userdata_setn(apr_pstrdup(r->pool, token), IMGSTORE_DELETE_HEADER, NULL, r->pool);
    apr_table_unset(r->headers_in, IMGSTORE_DELETE_HEADER);
    return DECLINED;
}

static int imgstore_log_transaction(request_rec *r)
{
    if (imgstore_req_find(r) != NULL) {
        imgstore_cleanup_after_request(r);
    }
    return DECLINED;
}

/*
 * A request httpd refused while reading it (400 for a line it cannot parse,
 * 414 over LimitRequestLine, 431...) never reaches translate_name, so no
 * mount is known: before mod_log_config writes the line, cut every long path
 * segment and query run of it, whatever path it names.
 */
static int imgstore_redact_refused(request_rec *r)
{
    void *claimed = NULL;

    apr_pool_userdata_get(&claimed, ROUTE_KEY, r->pool);
    if (claimed == NULL && r->main == NULL && r->filename == NULL && r->status >= 400 &&
        r->status < 500) {
        redact_request(r, "");
    }
    return DECLINED;
}

void imgstore_handler_register_hooks(void)
{
    ap_hook_log_transaction(imgstore_redact_refused, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(imgstore_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_read_request(imgstore_post_read_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_translate_name(imgstore_translate_name, NULL, NULL, APR_HOOK_LAST);
    ap_hook_map_to_storage(imgstore_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    /* After mod_log_config has written the access log line. */
    ap_hook_log_transaction(imgstore_log_transaction, NULL, NULL, APR_HOOK_LAST);
}
