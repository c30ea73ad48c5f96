/*
 * Reading a master key file, with the checks an SSL private key deserves.
 * Core unit: libc, APR and OpenSSL only.
 */
#ifndef IMGSTORE_KEYFILE_H
#define IMGSTORE_KEYFILE_H

#include <apr_pools.h>
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

#endif
