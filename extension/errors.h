/*-------------------------------------------------------------------------
 *
 * errors.h
 *	  errcode() values of Graphile Worker's own SQLSTATEs (the list is
 *	  extension/core/sqlstates.h).  PostgreSQL's own codes are used for
 *	  everything else.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_ERRORS_H
#define GW_ERRORS_H

#include "utils/elog.h"

#include "sqlstates.h"

#define GW_ERRCODE(s)	MAKE_SQLSTATE((s)[0], (s)[1], (s)[2], (s)[3], (s)[4])

#define ERRCODE_GW_BAD_JOB_KEY_MODE	GW_ERRCODE(GW_SQLSTATE_BAD_JOB_KEY_MODE)
#define ERRCODE_GW_NO_ROW			GW_ERRCODE(GW_SQLSTATE_NO_ROW)

#endif							/* GW_ERRORS_H */
