-- schema_shape: CREATE EXTENSION creates exactly the Graphile Worker 0.18
-- (migration 20) schema: tables, column order and defaults, generated
-- columns, constraint, index and sequence names, RLS without policies, the
-- job_spec type, the jobs view, the public function signatures and the
-- migrations ledger.  The same description is compared with a schema made
-- by the real Node package in tests/t/020_node_interop.pl.
CREATE EXTENSION graphile_worker;
\set ECHO none
\pset tuples_only on
\i tests/sql/describe_schema.sql
\pset tuples_only off
\set ECHO all
-- not relocatable, and the schema belongs to the extension
ALTER EXTENSION graphile_worker SET SCHEMA public;
SELECT extrelocatable, extnamespace::regnamespace FROM pg_extension WHERE extname = 'graphile_worker';
-- the schema itself is a member, so DROP EXTENSION removes it and pg_dump
-- does not create it separately
SELECT count(*) AS schema_is_member FROM pg_depend
 WHERE classid = 'pg_namespace'::regclass AND objid = 'graphile_worker'::regnamespace
   AND refclassid = 'pg_extension'::regclass AND deptype = 'e';
-- no triggers and no foreign keys, as in Node
SELECT count(*) AS triggers FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'graphile_worker'::regnamespace;
SELECT count(*) AS foreign_keys FROM pg_constraint
 WHERE connamespace = 'graphile_worker'::regnamespace AND contype = 'f';
-- the identity sequences start at 1 and jobs ids are bigint
SELECT pg_get_serial_sequence('graphile_worker._private_jobs', 'id') AS jobs_seq,
       pg_get_serial_sequence('graphile_worker._private_job_queues', 'id') AS queues_seq,
       pg_get_serial_sequence('graphile_worker._private_tasks', 'id') AS tasks_seq;
