/*
 * libFuzzer target for route parsing and token redaction: the input is a
 * client's path (or request line), the first byte picks the mode and the
 * mount. Checked: no read outside a tight copy (ASan), a redacted string
 * holds no path segment longer than IMGSTORE_REDACT_KEEP + 3 outside the
 * mount's own segments and no such run in the query, and it never grows
 * past twice the input; the same for imgstore_route_redact_query.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "imgstore_route.h"

static apr_pool_t *pool;

static void check_query(const char *q, int request_line)
{
    const char *end = q + strcspn(q, request_line ? " \t" : "");

    while (q < end) {
        size_t len = strcspn(q, "&=;/+,?#");
        if (q + len > end) {
            len = (size_t)(end - q);
        }
        if (len > IMGSTORE_REDACT_KEEP + 3) {
            abort();
        }
        q += len;
        if (q < end) {
            q++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const mounts[] = {"", "/", "/img", "/a/longmount/", NULL};
    const char *mount, *token = NULL, *rest, *path, *end;
    int request_line;
    char *s, *out;

    if (pool == NULL) {
        apr_initialize();
        apr_pool_create(&pool, NULL);
    }
    if (size < 1) {
        return 0;
    }
    request_line = data[0] & 1;
    mount = mounts[(data[0] >> 1) % 5];
    s = malloc(size);
    if (s == NULL) {
        return 0;
    }
    /* A C string of the rest, cut at the first NUL as httpd's would be. */
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';

    rest = imgstore_route_under(s, mount ? mount : "");
    if (rest != NULL) {
        imgstore_route_e route = imgstore_route_parse(rest, &token);
        if ((route == IMGSTORE_ROUTE_IMAGE) != (token != NULL)) {
            abort();
        }
        if (route != IMGSTORE_ROUTE_NONE && imgstore_route_allow(route) == NULL) {
            abort();
        }
    }

    out = imgstore_route_redact(pool, s, request_line, mount);
    if (out == NULL || strlen(out) > 2 * strlen(s)) {
        abort();
    }
    /* Every path segment left is short, or one of the mount's own. */
    path = out;
    if (request_line) {
        path = strchr(out, ' ');
        path = path ? path + 1 : out + strlen(out);
    }
    end = path + strcspn(path, request_line ? "?# \t" : "?#");
    while (path < end) {
        size_t len = strcspn(path, "/");
        if (path + len > end) {
            len = (size_t)(end - path);
        }
        if (len > IMGSTORE_REDACT_KEEP + 3) {
            const char *m = mount;
            int found = 0;
            while (m != NULL && *m) {
                size_t mlen;
                m += strspn(m, "/");
                mlen = strcspn(m, "/");
                found |= mlen == len && !strncmp(m, path, len);
                m += mlen;
            }
            if (!found) {
                abort();
            }
        }
        path += len;
        if (path < end) {
            path++;
        }
    }
    /* The query and fragment: no long run between separators. */
    check_query(end, request_line);
    out = imgstore_route_redact_query(pool, s);
    if (out == NULL || strlen(out) > 2 * strlen(s)) {
        abort();
    }
    check_query(out, 0);
    free(s);
    apr_pool_clear(pool);
    return 0;
}
