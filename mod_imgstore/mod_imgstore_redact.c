/*
 * Keep whole tokens out of access logs, error logs and server-status.
 * The handler calls this before anything is logged for an image request (or
 * an unknown path, which may hold a misplaced token):
 * every copy of the request line and URI httpd keeps gets the token cut to a
 * short prefix, and the scoreboard's copy of the request is refreshed.
 */
#include "mod_imgstore.h"

#include <scoreboard.h>

#include <apr_strings.h>

/* Enough to tell requests apart in a log, far too little to guess the rest. */
#define KEEP_CHARS 6

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

/*
 * In s, cut every path segment longer than KEEP_CHARS (up to a '?' or '#',
 * or in the request line the space before the protocol) to KEEP_CHARS
 * characters followed by "...", except the mount's own segments. Segments
 * are found by structure, not by spelling: a client may percent-encode
 * "/image/" or the token, add a trailing slash or "..", and httpd logs what
 * it sent.
 */
static char *redact(apr_pool_t *p, const char *s, int request_line, const char *mount)
{
    const char *path = s, *path_end, *cur;
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
    /* A cut segment of 7 or 8 characters grows by up to 2: room for the worst case. */
    o = out = apr_palloc(p, 2 * strlen(s) + 1);
    memcpy(o, s, (apr_size_t)(path - s));
    o += path - s;
    for (cur = path; cur < path_end;) {
        apr_size_t len = strcspn(cur, "/");
        if (cur + len > path_end) {
            len = (apr_size_t)(path_end - cur);
        }
        if (len > KEEP_CHARS && !is_mount_segment(mount, cur, len)) {
            memcpy(o, cur, KEEP_CHARS);
            memcpy(o + KEEP_CHARS, "...", 3);
            o += KEEP_CHARS + 3;
            changed = 1;
        } else {
            memcpy(o, cur, len);
            o += len;
        }
        cur += len;
        if (cur < path_end) {
            *o++ = *cur++; /* the '/' */
        }
    }
    if (!changed) {
        return (char *)s;
    }
    /* The query and, in the request line, the protocol. */
    strcpy(o, cur);
    return out;
}

void imgstore_redact_token(request_rec *r, const char *mount)
{
    r->the_request = redact(r->pool, r->the_request, 1, mount);
    r->unparsed_uri = redact(r->pool, r->unparsed_uri, 0, mount);
    r->uri = redact(r->pool, r->uri, 0, mount);
    r->parsed_uri.path = redact(r->pool, r->parsed_uri.path, 0, mount);
    r->filename = redact(r->pool, r->filename, 0, mount);
    r->canonical_filename = redact(r->pool, r->canonical_filename, 0, mount);
    r->path_info = redact(r->pool, r->path_info, 0, mount);
    if (r->connection->sbh != NULL) {
        ap_update_child_status(r->connection->sbh, SERVER_BUSY_WRITE, r);
    }
}
