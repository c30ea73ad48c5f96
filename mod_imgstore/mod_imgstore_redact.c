/*
 * Keep whole tokens out of access logs, error logs and server-status.
 * The handler calls this before anything is logged for an image request:
 * every copy of the request line and URI httpd keeps gets the token cut to a
 * short prefix, and the scoreboard's copy of the request is refreshed.
 */
#include "mod_imgstore.h"

#include <scoreboard.h>

#include <apr_strings.h>

/* Enough to tell requests apart in a log, far too little to guess the rest. */
#define KEEP_CHARS 6
#define MARKER "/image/"

/*
 * In s, cut what follows the last "/image/" before the end of the path
 * (a '?' or, in the request line, the space before the protocol) down to
 * KEEP_CHARS characters followed by "...".
 */
static char *redact(apr_pool_t *p, const char *s, int request_line)
{
    const char *path_end, *seg, *hit = NULL, *end;
    apr_size_t keep;

    if (s == NULL) {
        return NULL;
    }
    path_end = s + strcspn(s, request_line ? "? \t" : "?");
    if (request_line) {
        /* Skip the method: the path starts after the first space. */
        const char *sp = strchr(s, ' ');
        if (sp == NULL) {
            return (char *)s;
        }
        path_end = sp + 1 + strcspn(sp + 1, "? \t");
    }
    for (seg = s; (seg = strstr(seg, MARKER)) != NULL && seg < path_end; seg++) {
        hit = seg;
    }
    if (hit == NULL) {
        return (char *)s;
    }
    hit += sizeof(MARKER) - 1;
    end = path_end;
    keep = (apr_size_t)(end - hit) > KEEP_CHARS ? KEEP_CHARS : (apr_size_t)(end - hit);
    if ((apr_size_t)(end - hit) <= KEEP_CHARS) {
        return (char *)s;
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, s, (apr_size_t)(hit - s) + keep), "...", end, NULL);
}

void imgstore_redact_token(request_rec *r)
{
    r->the_request = redact(r->pool, r->the_request, 1);
    r->unparsed_uri = redact(r->pool, r->unparsed_uri, 0);
    r->uri = redact(r->pool, r->uri, 0);
    r->parsed_uri.path = redact(r->pool, r->parsed_uri.path, 0);
    r->filename = redact(r->pool, r->filename, 0);
    r->canonical_filename = redact(r->pool, r->canonical_filename, 0);
    r->path_info = redact(r->pool, r->path_info, 0);
    if (r->connection->sbh != NULL) {
        ap_update_child_status(r->connection->sbh, SERVER_BUSY_WRITE, r);
    }
}
