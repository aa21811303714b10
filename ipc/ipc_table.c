/*
 * crisp: the allow matrix of ipc/msgs.def as data, and the checks that keep
 * it consistent.
 *
 * What can be checked by the compiler is: every line's number, size bound
 * and role masks (static asserts below), and the uniqueness of numbers
 * (ipc_type_index() is a switch on them, so a duplicate is a "duplicate
 * case value" error).  The relations between lines (a request's answer
 * exists, is itself an answer, and may travel back along the request's
 * path) are checked once at run time by ipc_table_check(), which
 * ipc_chan_new() calls; it also re-checks uniqueness, so that a table
 * edited without that switch still fails closed.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "proto/ipc.pb-c.h"
#include "ipc/ipc.h"
#include "ipc/ipc_internal.h"

#define MSG(name, num, snd, rcv, max, pb, fd, ans)                                             \
	_Static_assert((num) > 0 && (num) <= 0xffff, "ipc " #name ": number out of range");   \
	_Static_assert((max) <= IPC_MAX_PAYLOAD, "ipc " #name ": bound over IPC_MAX_PAYLOAD"); \
	_Static_assert((snd) != 0 && ((snd) & ~R_ALL) == 0, "ipc " #name ": bad senders");    \
	_Static_assert((rcv) != 0 && ((rcv) & ~R_ALL) == 0, "ipc " #name ": bad receivers");
#include "ipc/msgs.def"
#undef MSG

/* (Macro parameters are spelt so that they cannot hit the designators.) */
static const struct ipc_msgdef ipc_table[IPC_NTYPES] = {
#define MSG(n_, num_, snd_, rcv_, max_, pb_, fd_, ans_)                                  \
	[IPC_IDX_##n_] = { .type = IPC_##n_, .name = #n_, .senders = (snd_),            \
			   .receivers = (rcv_), .maxlen = (max_),                       \
			   .desc = &cipc__##pb_##__descriptor, .fd = (fd_),             \
			   .answer = IPC_##ans_ },
#include "ipc/msgs.def"
#undef MSG
};

int ipc_type_index(uint32_t type)
{
	/* A switch rather than a search: O(1), and msgs.def cannot hold the
	 * same number twice without failing to compile. */
	switch (type) {
#define MSG(name, num, snd, rcv, max, pb, fd, ans) \
	case IPC_##name:                           \
		return IPC_IDX_##name;
#include "ipc/msgs.def"
#undef MSG
	default:
		return -1;
	}
}

const struct ipc_msgdef *ipc_msgdef_at(size_t idx)
{
	return idx < IPC_NTYPES ? &ipc_table[idx] : NULL;
}

const struct ipc_msgdef *ipc_msgdef(uint32_t type)
{
	int i = ipc_type_index(type);

	return i < 0 ? NULL : &ipc_table[i];
}

const char *crisp_role_name(int role)
{
	static const char *const names[ROLE_MAX] = {
		[ROLE_CRISPD] = "crispd", [ROLE_FRONTD] = "frontd", [ROLE_IMAGED] = "imaged",
		[ROLE_EXECD] = "execd",   [ROLE_NETD] = "netd",
	};

	if (role < 0 || role >= ROLE_MAX)
		return "?";
	return names[role];
}

/* ---- run-time consistency of the table ---- */

static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static bool table_answer[IPC_NTYPES]; /* written once under table_once */
static char table_problem[256];       /* empty when the table is sound */

static void table_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void table_fail(const char *fmt, ...)
{
	va_list ap;

	if (table_problem[0] != '\0')
		return; /* keep the first problem */
	va_start(ap, fmt);
	vsnprintf(table_problem, sizeof table_problem, fmt, ap);
	va_end(ap);
}

static void table_validate(void)
{
	const struct ipc_msgdef *err = ipc_msgdef(IPC_ERROR);

	for (size_t i = 0; i < IPC_NTYPES; i++) {
		const struct ipc_msgdef *d = &ipc_table[i];

		for (size_t j = i + 1; j < IPC_NTYPES; j++)
			if (ipc_table[j].type == d->type)
				table_fail("msgs.def: %s and %s share a number", d->name,
					   ipc_table[j].name);
		if (d->fd > FD_ANY)
			table_fail("msgs.def: %s: bad fd kind", d->name);
		if (d->answer == IPC_NONE)
			continue;

		/* A request: its answer must exist, be a pure answer, and be
		 * sendable by everyone who may receive the request, to
		 * everyone who may send it. */
		const struct ipc_msgdef *a = ipc_msgdef(d->answer);
		if (a == NULL) {
			table_fail("msgs.def: %s: answer type missing", d->name);
			continue;
		}
		table_answer[a - ipc_table] = true;
		if (a->answer != IPC_NONE || a->type == IPC_ERROR)
			table_fail("msgs.def: %s: answer %s must be a plain answer", d->name,
				   a->name);
		if ((d->receivers & ~a->senders) != 0 || (d->senders & ~a->receivers) != 0)
			table_fail("msgs.def: %s: answer %s cannot travel back", d->name, a->name);
	}
	/* ERROR answers any request, from and to anyone. */
	if (err == NULL || err->senders != R_ALL || err->receivers != R_ALL ||
	    err->answer != IPC_NONE || err->fd != FD_NONE ||
	    err->desc != &cipc__error__descriptor)
		table_fail("msgs.def: ERROR must be R_ALL -> R_ALL, without answer or fd, "
			   "payload error");
	else
		table_answer[err - ipc_table] = true;
}

int ipc_table_check(crisp_err_t *err)
{
	pthread_once(&table_once, table_validate);
	if (table_problem[0] != '\0')
		return crisp_error(err, CRISP_INTERNAL, 0, "%s", table_problem);
	return 0;
}

bool ipc_type_is_answer(uint32_t type)
{
	int i = ipc_type_index(type);

	pthread_once(&table_once, table_validate);
	return i >= 0 && table_answer[i];
}

bool ipc_fdkind_ok(int fd, enum ipc_fdkind kind)
{
	struct stat st;

	if (kind == FD_NONE || fd < 0 || fstat(fd, &st) < 0)
		return false;
	switch (kind) {
	case FD_SOCK:
		return S_ISSOCK(st.st_mode);
	case FD_DIR:
		return S_ISDIR(st.st_mode);
	case FD_REG:
		return S_ISREG(st.st_mode);
	case FD_ANY:
		return true;
	case FD_NONE:
		break;
	}
	return false;
}
