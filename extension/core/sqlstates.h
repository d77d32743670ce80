/*-------------------------------------------------------------------------
 *
 * sqlstates.h
 *	  Graphile Worker's own SQLSTATEs, the one list of them.  The C code
 *	  raises them through errors.h; the install and update scripts spell
 *	  them as literals, and tests/unit/test_sqlstates.c checks that every
 *	  literal there is one of these and that each of these is used.
 *
 *	  Backend-free (extension/core).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_SQLSTATES_H
#define GW_SQLSTATES_H

/* add_job/add_jobs: unknown job_key_mode (Node raises it too) */
#define GW_SQLSTATE_BAD_JOB_KEY_MODE	"GWBKM"
/* add_job: the keyed row changed under it, by a writer bypassing add_job */
#define GW_SQLSTATE_NO_ROW				"GWNOR"

/* All of them, for the test. */
#define GW_SQLSTATES { GW_SQLSTATE_BAD_JOB_KEY_MODE, GW_SQLSTATE_NO_ROW }

#endif							/* GW_SQLSTATES_H */
