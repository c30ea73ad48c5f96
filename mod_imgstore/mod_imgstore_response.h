/*
 * The answers every route shares: JSON bodies, the security headers, the
 * one mapping from a core status (imgstore_status.h) to an HTTP answer, and
 * the per-request state the hooks pass each other.
 */
#ifndef MOD_IMGSTORE_RESPONSE_H
#define MOD_IMGSTORE_RESPONSE_H

#include "mod_imgstore_private.h"

#include "imgstore_status.h"

/* What a 503 tells clients to wait. */
#define IMGSTORE_RETRY_AFTER_SECONDS 5

/* This module's state for one request, in r->request_config. */
typedef struct {
    const char *mount; /* the prefix the route was found under ("" for a mount at "/") */
    int body_read;     /* the request body was read to its end */
} imgstore_req_t;

/* The request's state, created the first time: the handler has seen this request. */
imgstore_req_t *imgstore_req_get(request_rec *r);
/* The request's state, or NULL when the handler never saw this request. */
imgstore_req_t *imgstore_req_find(request_rec *r);

void imgstore_response_security_headers(request_rec *r);
int imgstore_response_json(request_rec *r, int status, const char *json, apr_size_t len);
/* A JSON {"error": message} answer with this HTTP status, counted for server-status. */
int imgstore_response_error(request_rec *r, int status, const char *message);

/* The HTTP status for a core status: the one place that maps them. */
int imgstore_response_status(imgstore_status_e st);

/*
 * Answer a failed operation: the mapped status, with message for what the
 * client caused (NULL: a generic text); a 503 gets Retry-After; a database
 * error is logged here with err.
 */
int imgstore_response_fail(request_rec *r, imgstore_status_e st, const char *message,
                           const char *err);

#endif
