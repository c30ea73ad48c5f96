/*
 * Which route a path under the mount names, and cutting tokens out of a
 * path before anything logs it. Both read client bytes: pure functions,
 * table-tested (t/unit/test_route.c) and fuzzed (t/fuzz/fuzz_route.c).
 *
 *   <mount>/upload          POST/PUT IMGSTORE_ROUTE_UPLOAD
 *   <mount>/image/<token>   GET/HEAD/DELETE IMGSTORE_ROUTE_IMAGE (the token as the URL spells it)
 *   <mount>/cleanup         GET/HEAD IMGSTORE_ROUTE_CLEANUP
 *   <mount>/health          GET/HEAD IMGSTORE_ROUTE_HEALTH
 *   <mount>/ and <mount>    GET/HEAD IMGSTORE_ROUTE_PAGE (the upload page; its redirect)
 *
 * Core unit: libc and APR only.
 */
#ifndef IMGSTORE_ROUTE_H
#define IMGSTORE_ROUTE_H

#include <apr_pools.h>

typedef enum {
    IMGSTORE_ROUTE_NONE = 0,
    IMGSTORE_ROUTE_UPLOAD,
    IMGSTORE_ROUTE_IMAGE,
    IMGSTORE_ROUTE_CLEANUP,
    IMGSTORE_ROUTE_HEALTH,
    IMGSTORE_ROUTE_PAGE
} imgstore_route_e;

/*
 * The route that rest (the path after the mount, "/..." or "") names. For
 * IMGSTORE_ROUTE_IMAGE, *token_text points at the rest of the path after
 * "/image/": the token as the client spelled it, not yet decoded.
 */
imgstore_route_e imgstore_route_parse(const char *rest, const char **token_text);

/*
 * The rest of uri under mount (trailing slashes of mount ignored), or NULL
 * when mount is not a path-segment prefix of uri.
 */
const char *imgstore_route_under(const char *uri, const char *mount);

/* The Allow header value of a route, NULL for IMGSTORE_ROUTE_NONE. */
const char *imgstore_route_allow(imgstore_route_e route);

/* Characters of a cut path segment that stay: enough to tell requests apart. */
#define IMGSTORE_REDACT_KEEP 6

/*
 * s with every path segment longer than IMGSTORE_REDACT_KEEP characters
 * cut to that many followed by "...", except the mount's own segments. The
 * path ends at '?' or '#'; in a request line (request_line set) it starts
 * after the method's space and also ends at a space or tab. The query and
 * fragment after it are cut as imgstore_route_redact_query does (a token
 * may be put there too); in a request line they end at a space or tab. Segments are
 * found by structure, not by spelling: a client may percent-encode
 * "/image/" or the token, add a trailing slash or "..", and httpd logs what
 * it sent. Returns s itself when nothing was cut, NULL for NULL.
 */
char *imgstore_route_redact(apr_pool_t *p, const char *s, int request_line, const char *mount);

/*
 * A query string (r->args, without the '?') with every run between the
 * separators & = ; / + , ? # longer than IMGSTORE_REDACT_KEEP characters
 * cut like a path segment. Returns q itself when nothing was cut.
 */
char *imgstore_route_redact_query(apr_pool_t *p, const char *q);

#endif
