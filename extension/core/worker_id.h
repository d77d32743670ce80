/*-------------------------------------------------------------------------
 *
 * worker_id.h
 *	  Worker ids: the locked_by value of our processes.
 *
 * Backend-free, so it is unit-tested with cmocka (tests/unit).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_WORKER_ID_H
#define GW_WORKER_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "gw-" + 16 hex + "-" + up to 8 hex + "-" + up to 16 hex + NUL */
#define GW_WORKER_ID_LEN 48

/*
 * The parts of a worker id: the server's system identifier (so that ids of
 * another server, and of Node or Rust workers, are never taken for ours),
 * and the process incarnation (pid and start time in microseconds).
 */
typedef struct GwWorkerId
{
	uint64_t	system_id;
	uint32_t	pid;
	uint64_t	started_us;
} GwWorkerId;

extern void gw_worker_id_format(const GwWorkerId *id, char *buf, size_t len);
extern bool gw_worker_id_parse(const char *text, GwWorkerId *id);

#endif							/* GW_WORKER_ID_H */
