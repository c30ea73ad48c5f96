/* Image buffers kept for reuse (see imgstore_bigbuf.h). */
#include "imgstore_bigbuf.h"

#include <pthread.h>
#include <stdlib.h>

/*
 * In front of every buffer: 64 bytes, so the caller's bytes start on a
 * cache line of the head (malloc() aligns the head to 16).
 */
typedef struct head_s {
    struct head_s *next;
    apr_size_t cap;     /* bytes usable after the head */
    apr_size_t touched; /* the most ever written: what the buffer keeps resident */
} head_t;

#define HEAD_BYTES 64

typedef char head_fits[sizeof(head_t) <= HEAD_BYTES ? 1 : -1];

/*
 * A static lock, never destroyed: a bucket may give its buffer back on any
 * thread at any time, even while the child's pool is being cleaned up.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
    int on;       /* keeping now */
    head_t *kept; /* most recently given back first */
    int count, max_count;
    apr_size_t bytes, max_bytes, max_each;
} keeper;

static head_t *head_of(unsigned char *buf)
{
    return (head_t *)(void *)(buf - HEAD_BYTES);
}

static apr_status_t stop_keeping(void *data)
{
    head_t *h, *kept;

    (void)data;
    /* The child is exiting: from here on get and put are malloc() and free(). */
    pthread_mutex_lock(&lock);
    kept = keeper.kept;
    keeper.kept = NULL;
    keeper.count = 0;
    keeper.bytes = 0;
    keeper.on = 0;
    pthread_mutex_unlock(&lock);
    while ((h = kept) != NULL) {
        kept = h->next;
        free(h);
    }
    return APR_SUCCESS;
}

void imgstore_bigbuf_keep(apr_pool_t *p, int count, apr_size_t each, apr_size_t total)
{
    int was_on;

    pthread_mutex_lock(&lock);
    was_on = keeper.on;
    if (!was_on) {
        keeper.max_count = count;
        keeper.max_each = each;
        keeper.max_bytes = total;
        keeper.on = 1;
    }
    pthread_mutex_unlock(&lock);
    if (!was_on) {
        apr_pool_cleanup_register(p, NULL, stop_keeping, apr_pool_cleanup_null);
    }
}

/* Take the smallest kept buffer that holds n bytes: a large one stays for a large image. */
static head_t *take_kept(apr_size_t n)
{
    head_t **at, **best = NULL, *h;

    for (at = &keeper.kept; *at != NULL; at = &(*at)->next) {
        if ((*at)->cap >= n && (best == NULL || (*at)->cap < (*best)->cap)) {
            best = at;
        }
    }
    if (best == NULL) {
        return NULL;
    }
    h = *best;
    *best = h->next;
    keeper.count--;
    keeper.bytes -= h->touched;
    return h;
}

unsigned char *imgstore_bigbuf_get(apr_size_t n)
{
    head_t *h = NULL;

    if (n >= IMGSTORE_BIGBUF_FROM) {
        pthread_mutex_lock(&lock);
        h = take_kept(n);
        pthread_mutex_unlock(&lock);
    }
    if (h == NULL) {
        if (n > (apr_size_t)-1 - HEAD_BYTES || (h = malloc(HEAD_BYTES + n)) == NULL) {
            return NULL;
        }
        h->cap = n;
        h->touched = 0;
    }
    h->next = NULL;
    return (unsigned char *)h + HEAD_BYTES;
}

void imgstore_bigbuf_put(unsigned char *buf, apr_size_t used)
{
    head_t *h;

    if (buf == NULL) {
        return;
    }
    h = head_of(buf);
    if (used > h->touched) {
        h->touched = used < h->cap ? used : h->cap;
    }
    if (h->cap >= IMGSTORE_BIGBUF_FROM) {
        pthread_mutex_lock(&lock);
        if (keeper.on && keeper.count < keeper.max_count && h->touched <= keeper.max_each &&
            h->touched <= keeper.max_bytes - keeper.bytes) {
            h->next = keeper.kept;
            keeper.kept = h;
            keeper.count++;
            keeper.bytes += h->touched;
            h = NULL;
        }
        pthread_mutex_unlock(&lock);
    }
    if (h != NULL) {
        free(h);
    }
}

void imgstore_bigbuf_kept(int *count, apr_size_t *bytes)
{
    pthread_mutex_lock(&lock);
    *count = keeper.count;
    *bytes = keeper.bytes;
    pthread_mutex_unlock(&lock);
}
