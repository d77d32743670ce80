/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where PostgreSQL version differences (13 to 17) are
 *	  bridged.  Code elsewhere uses the names defined here and never tests
 *	  PG_VERSION_NUM itself.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_COMPAT_H
#define GW_COMPAT_H

#include "utils/guc.h"

/* PostgreSQL 15 renamed EmitWarningsOnPlaceholders and made it reserve. */
#if PG_VERSION_NUM >= 150000
#define gw_reserve_guc_prefix(prefix) MarkGUCPrefixReserved(prefix)
#else
#define gw_reserve_guc_prefix(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

#endif							/* GW_COMPAT_H */
