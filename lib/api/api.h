/* Shared by the lib/api glue: the public header plus helpers for argument validation. */
#ifndef LNX_API_API_H
#define LNX_API_API_H

#include <stdatomic.h>
#include <string.h>

#include "llavanext/llavanext.h"
#include "../base/status.h"

/*
 * Copies a caller's parameter struct into the library's own: reads min(caller size, ours)
 * bytes, keeps our defaults for the rest, and rejects a larger caller struct whose extra bytes
 * are not all zero (the caller set a field this library version does not know).
 */
/* The body of every *_params_init: zero-fills the caller's `size` bytes, copies as many of the
 * `defaults` as fit and sets struct_size = size. Sizes below 4 bytes are ignored. */
void lnx_params_init(void *params, size_t size, const void *defaults, size_t defaults_size);

lnx_status lnx_params_copy(void *ours, size_t our_size, const void *theirs, const char *what);

/* A handle's own copy of the message of its most recent failed call, for bindings that hop
 * threads (the thread-local llavanext_last_error() belongs to whichever thread made the call).
 * Zero bytes are an empty slot. A spin lock guards it: the model is shared by threads. */
typedef struct lnx_err_slot {
    atomic_int busy;
    llavanext_status status;
    char msg[1024];
} lnx_err_slot;

/* When st is an error, stores it with the calling thread's message; returns st. */
llavanext_status lnx_err_record(const lnx_err_slot *slot, llavanext_status st);
/* snprintf-style copy of the message (empty when no call has failed, or slot is NULL); returns its
 * length. */
size_t lnx_err_copy(const lnx_err_slot *slot, char *buf, size_t size);

#endif
