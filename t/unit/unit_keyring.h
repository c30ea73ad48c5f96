/*
 * The Check fixture of the suites that seal and open images: a pool and a
 * keyring holding key 3 (all bytes 0x42), made anew for every test.
 */
#ifndef UNIT_KEYRING_H
#define UNIT_KEYRING_H

#include <check.h>
#include <string.h>

#include <apr_pools.h>

#include "imgstore_crypt.h"

static apr_pool_t *pool;
static imgstore_keyring_t *kr;

static void setup(void)
{
    unsigned char master[IMGSTORE_MASTER_KEY_BYTES];

    apr_pool_create(&pool, NULL);
    kr = imgstore_keyring_create(pool);
    ck_assert_ptr_nonnull(kr);
    memset(master, 0x42, sizeof(master));
    ck_assert_ptr_null(imgstore_keyring_add(kr, 3, master));
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

#endif
