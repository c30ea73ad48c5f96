/* Claiming requests under the mount, routing them, and redacting tokens before any log. */
#ifndef MOD_IMGSTORE_HANDLER_H
#define MOD_IMGSTORE_HANDLER_H

#include "mod_imgstore_private.h"

/* Registers translate_name, map_to_storage, the handler and the after-request hook. */
void imgstore_handler_register_hooks(void);

#endif
