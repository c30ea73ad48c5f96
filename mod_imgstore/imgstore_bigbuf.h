/*
 * Buffers that hold a whole image, kept for reuse.
 *
 * A buffer over the child's mmap threshold (mod_imgstore.c) is mapped fresh
 * by malloc() and unmapped by free(): a page fault for every 4 KB written
 * and a TLB shootdown on every free. Serving 1 MB images from the cache,
 * that was a quarter of the machine. A child instead keeps a few such
 * buffers mapped for the next request, bounded in number and in the bytes
 * they have touched (what they add to its resident size).
 *
 * Core unit: libc and APR only.
 */
#ifndef IMGSTORE_BIGBUF_H
#define IMGSTORE_BIGBUF_H

#include <apr_pools.h>

/*
 * Under a threaded MPM a child maps every buffer from this size up
 * (mod_imgstore.c sets it as glibc's mmap threshold); such buffers are kept.
 */
#define IMGSTORE_BIGBUF_FROM (256 * 1024)

/*
 * From now until p is cleaned up, this process keeps up to `count` given-back
 * buffers of IMGSTORE_BIGBUF_FROM or more that have touched at most `each`
 * bytes, and `total` bytes between them: the image sizes most requests carry
 * stay mapped, a rare large one goes back to the kernel. Outside that window
 * (the parent, tests, after the child's pool is gone) get and put are plain
 * malloc() and free().
 */
void imgstore_bigbuf_keep(apr_pool_t *p, int count, apr_size_t each, apr_size_t total);

/* A buffer of at least n bytes, or NULL when out of memory. */
unsigned char *imgstore_bigbuf_get(apr_size_t n);

/*
 * Give back a buffer from imgstore_bigbuf_get() (NULL is fine) of which at
 * most the first `used` bytes were written; whatever it held that was secret
 * the caller has wiped.
 */
void imgstore_bigbuf_put(unsigned char *buf, apr_size_t used);

/* How many buffers are kept now, and the bytes they have touched (tests, diagnostics). */
void imgstore_bigbuf_kept(int *count, apr_size_t *bytes);

#endif
