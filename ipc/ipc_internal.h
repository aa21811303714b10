/*
 * crisp: ipc internals shared by ipc.c, ipc_table.c, the unit tests and the
 * fuzzer.  Daemons use ipc.h only.
 */
#ifndef CRISP_IPC_INTERNAL_H
#define CRISP_IPC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "ipc/ipc.h"

/* Dense index of every line of msgs.def, in file order. */
enum ipc_index {
#define MSG(name, num, snd, rcv, max, pb, fd, ans) IPC_IDX_##name,
#include "ipc/msgs.def"
#undef MSG
	IPC_NTYPES
};

/* Validate the table once per process (unique numbers, answer relations);
 * 0, or -1 with CRISP_INTERNAL when msgs.def is inconsistent. */
int ipc_table_check(crisp_err_t *err);

/* Index of a type in the table, -1 when the type does not exist. */
int ipc_type_index(uint32_t type);
const struct ipc_msgdef *ipc_msgdef_at(size_t idx); /* idx < IPC_NTYPES */

/* True for ERROR and for every type that is some type's declared answer:
 * such messages are matched to a pending request, never handed to a
 * handler.  Valid only after ipc_table_check() succeeded. */
bool ipc_type_is_answer(uint32_t type);

/* Whether fd's file type is what kind asks for (FD_NONE: never). */
bool ipc_fdkind_ok(int fd, enum ipc_fdkind kind);

#ifdef CRISP_FUZZING
/* Fuzzers only: put the channel's sequence numbers back to their start so
 * every input meets the same state without re-creating the channel. */
void ipc_chan_fuzz_reset(struct ipc_chan *ch);
#endif

#endif
