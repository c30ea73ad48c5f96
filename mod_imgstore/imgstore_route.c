/* Route parsing and token redaction of a path: see imgstore_route.h. */
#include "imgstore_route.h"

#include <string.h>

#define IMAGE_PREFIX "/image/"

imgstore_route_e imgstore_route_parse(const char *rest, const char **token_text)
{
    *token_text = NULL;
    if (!strcmp(rest, "") || !strcmp(rest, "/")) {
        return IMGSTORE_ROUTE_PAGE;
    }
    if (!strcmp(rest, "/upload")) {
        return IMGSTORE_ROUTE_UPLOAD;
    }
    if (!strcmp(rest, "/cleanup")) {
        return IMGSTORE_ROUTE_CLEANUP;
    }
    if (!strcmp(rest, "/health")) {
        return IMGSTORE_ROUTE_HEALTH;
    }
    if (!strncmp(rest, IMAGE_PREFIX, sizeof(IMAGE_PREFIX) - 1)) {
        *token_text = rest + sizeof(IMAGE_PREFIX) - 1;
        return IMGSTORE_ROUTE_IMAGE;
    }
    return IMGSTORE_ROUTE_NONE;
}

const char *imgstore_route_under(const char *uri, const char *mount)
{
    apr_size_t len = strlen(mount);

    while (len > 0 && mount[len - 1] == '/') {
        len--;
    }
    if (strncmp(uri, mount, len) != 0 || (uri[len] != '/' && uri[len] != '\0')) {
        return NULL;
    }
    return uri + len;
}

const char *imgstore_route_allow(imgstore_route_e route)
{
    switch (route) {
        case IMGSTORE_ROUTE_UPLOAD:
            return "POST, PUT, OPTIONS";
        case IMGSTORE_ROUTE_IMAGE:
            return "GET, HEAD, DELETE, OPTIONS";
        case IMGSTORE_ROUTE_CLEANUP:
        case IMGSTORE_ROUTE_HEALTH:
        case IMGSTORE_ROUTE_PAGE:
            return "GET, HEAD, OPTIONS";
        default:
            return NULL;
    }
}

/* Whether seg (len bytes) is one of the mount's own path segments: those stay readable. */
static int is_mount_segment(const char *mount, const char *seg, apr_size_t len)
{
    const char *m = mount;

    while (m != NULL && *m != '\0') {
        apr_size_t mlen;

        m += strspn(m, "/");
        mlen = strcspn(m, "/");
        if (mlen == len && mlen > 0 && strncmp(m, seg, len) == 0) {
            return 1;
        }
        m += mlen;
    }
    return 0;
}

/* Query and fragment separators: what is between two of them may be a token. */
#define QUERY_SEPARATORS "&=;/+,?#"

/*
 * Cuts every run longer than IMGSTORE_REDACT_KEEP between separators in
 * [cur, end): the mount's own segments stay when mount is set (the path).
 */
static char *cut_runs(char *o, const char *cur, const char *end, const char *seps,
                      const char *mount, int *changed)
{
    while (cur < end) {
        apr_size_t len = strcspn(cur, seps);
        if (cur + len > end) {
            len = (apr_size_t)(end - cur);
        }
        if (len > IMGSTORE_REDACT_KEEP && (mount == NULL || !is_mount_segment(mount, cur, len))) {
            memcpy(o, cur, IMGSTORE_REDACT_KEEP);
            memcpy(o + IMGSTORE_REDACT_KEEP, "...", 3);
            o += IMGSTORE_REDACT_KEEP + 3;
            *changed = 1;
        } else {
            memcpy(o, cur, len);
            o += len;
        }
        cur += len;
        if (cur < end) {
            *o++ = *cur++; /* the separator */
        }
    }
    return o;
}

char *imgstore_route_redact(apr_pool_t *p, const char *s, int request_line, const char *mount)
{
    const char *path = s, *path_end, *end;
    int changed = 0;
    char *out, *o;

    if (s == NULL) {
        return NULL;
    }
    if (request_line) {
        /* The path starts after the method. */
        const char *sp = strchr(s, ' ');
        if (sp == NULL) {
            return (char *)s;
        }
        path = sp + 1;
    }
    path_end = path + strcspn(path, request_line ? "?# \t" : "?#");
    /* In a request line the query ends before the protocol. */
    end = path_end + strcspn(path_end, request_line ? " \t" : "");
    /* A cut run of 7 or 8 characters grows by up to 2: room for the worst case. */
    o = out = apr_palloc(p, 2 * strlen(s) + 1);
    memcpy(o, s, (apr_size_t)(path - s));
    o += path - s;
    o = cut_runs(o, path, path_end, "/", mount ? mount : "", &changed);
    o = cut_runs(o, path_end, end, QUERY_SEPARATORS, NULL, &changed);
    if (!changed) {
        return (char *)s;
    }
    /* In the request line, the protocol. */
    strcpy(o, end);
    return out;
}

char *imgstore_route_redact_query(apr_pool_t *p, const char *q)
{
    int changed = 0;
    char *out, *o;

    if (q == NULL) {
        return NULL;
    }
    o = out = apr_palloc(p, 2 * strlen(q) + 1);
    o = cut_runs(o, q, q + strlen(q), QUERY_SEPARATORS, NULL, &changed);
    *o = '\0';
    return changed ? out : (char *)q;
}
