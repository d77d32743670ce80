/*-------------------------------------------------------------------------
 *
 * job_key_lock.c
 *	  The per-key lock that serialises keyed inserts (add_job and add_jobs
 *	  with a job_key): graphile_worker._take_job_key_locks(keys text[]),
 *	  called by _lock_job_keys before it row-locks the jobs with those keys.
 *
 * The lock is a heavyweight advisory-type lock whose tag no SQL function
 * can produce: pg_advisory_* always put 1 (one bigint key) or 2 (two int4
 * keys) in the tag's fourth field, ours puts GW_JOB_KEY_LOCK_FIELD4.  So a
 * session can only hold a key's lock by calling add_job (or add_jobs) with
 * that key, which it may do anyway; it cannot squat on the key of someone
 * else's cron entry with pg_advisory_xact_lock.  In pg_locks the lock shows
 * as locktype advisory, classid 1735852033, objid the key's hash, objsubid
 * 26487.
 *
 * Locks are taken for the transaction (released at its end, or at the
 * abort of the subtransaction that took them), exclusive, in ascending
 * hash order, so that two callers with overlapping keys never deadlock;
 * the wait honours lock_timeout and the deadlock detector like any other.
 *
 * Runs in any backend that enqueues keyed jobs, including supervisors
 * firing crontab entries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_take_job_key_locks);

/* The tag's class (field 2) and marker (field 4): "gw\0\1" and "gw" */
#define GW_JOB_KEY_LOCK_CLASS	1735852033
#define GW_JOB_KEY_LOCK_FIELD4	0x6777

static int
compare_uint32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return (x > y) - (x < y);
}

/*
 * lock_key_hashes takes the lock of each of n key hashes (sorted and
 * de-duplicated here, in place) for the current transaction.
 */
static void
lock_key_hashes(uint32 *hashes, int n)
{
	qsort(hashes, n, sizeof(uint32), compare_uint32);
	for (int i = 0; i < n; i++)
	{
		LOCKTAG		tag;

		CHECK_FOR_INTERRUPTS();
		if (i > 0 && hashes[i] == hashes[i - 1])
			continue;
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, GW_JOB_KEY_LOCK_CLASS,
							 hashes[i], GW_JOB_KEY_LOCK_FIELD4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
}

/*
 * graphile_worker._take_job_key_locks(keys text[]) takes the lock of each
 * non-NULL key.  Keys are compared byte for byte, as the key column's
 * unique index does.
 */
Datum
gw_sql_take_job_key_locks(PG_FUNCTION_ARGS)
{
	ArrayType  *keys = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	uint32	   *hashes;
	int			n = 0;

	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	hashes = palloc(sizeof(uint32) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
	{
		text	   *key;

		if (nulls[i])
			continue;
		key = DatumGetTextPP(elems[i]);
		hashes[n++] = DatumGetUInt32(hash_any((unsigned char *) VARDATA_ANY(key),
											  VARSIZE_ANY_EXHDR(key)));
	}
	lock_key_hashes(hashes, n);
	PG_RETURN_VOID();
}
