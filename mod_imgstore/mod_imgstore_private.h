/*
 * What every glue file needs and nothing more: the module record, the log
 * tag macro, and APLOG_USE_MODULE so that `LogLevel imgstore:debug` reaches
 * every line of every glue file. Each glue area declares its own API in its
 * own header (mod_imgstore_config.h, _db.h, _cleanup.h, _response.h,
 * _status.h, _upload.h, _image.h, _handler.h), so a file's includes tell
 * which room it is in. The core (imgstore_*) never includes a glue header
 * or any httpd header.
 */
#ifndef MOD_IMGSTORE_PRIVATE_H
#define MOD_IMGSTORE_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

extern module AP_MODULE_DECLARE_DATA imgstore_module;

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(imgstore);
#endif

/* Every log line of the module carries its own tag; httpd's APLOGNO stays httpd's. */
#define IMGLOGNO(n) "IMG" #n ": "

/* The handler name of SetHandler. */
#define IMGSTORE_HANDLER "imgstore"

/* The module's clock for expiry, in epoch seconds. */
apr_int64_t imgstore_now(void);

#endif
