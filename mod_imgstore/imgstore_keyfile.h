/*
 * Reading a master key file, with the checks an SSL private key deserves.
 * Core unit: libc, APR and OpenSSL only.
 */
#ifndef IMGSTORE_KEYFILE_H
#define IMGSTORE_KEYFILE_H

#include <apr_pools.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "imgstore_crypt.h"

/*
 * Open path, fstat the descriptor and read the key. The file must be a
 * regular file, not accessible to group or others, owned by root or by
 * allowed_uid (the user starting httpd, who reads it: never the server's
 * User, whose scripts must neither read nor replace it), and hold either 32 raw bytes or 64 hex
 * digits with an optional trailing newline. Returns NULL on success or a sentence naming the
 * problem (the caller adds the path); key is wiped on failure.
 */
const char *imgstore_keyfile_load(apr_pool_t *p, const char *path, uid_t allowed_uid,
                                  unsigned char key[IMGSTORE_MASTER_KEY_BYTES]);

/*
 * The steps every secret file read shares (master key files here, the
 * expiry-key state file in imgstore_expkey.c). Open path read-only (flags
 * adds e.g. O_NOFOLLOW) and fstat the descriptor, so what the caller checks
 * in *sb is what it reads. Returns the descriptor of a regular file, or -1
 * with *err "cannot be opened: ...", "cannot be examined: ..." or "is not a
 * regular file"; *open_errno (may be NULL) is open's errno, 0 if it succeeded.
 */
int imgstore_keyfile_open(apr_pool_t *p, const char *path, int flags, struct stat *sb,
                          const char **err, int *open_errno);

/*
 * Read fd to its end, at most cap bytes (cap > expected catches a file that
 * grew) into buf; *n is the count. NULL if exactly expected bytes were read,
 * else "cannot be read: ..." or "changed size while being read". fd stays open.
 */
const char *imgstore_keyfile_read(apr_pool_t *p, int fd, unsigned char *buf, size_t cap,
                                  size_t expected, size_t *n);

#endif
