-- describe_schema.sql: a text description of the graphile_worker schema's
-- shape as Graphile Worker sees it (tables, columns, constraints, indexes,
-- sequences, view, type, public function signatures, RLS, migrations).
-- Two databases whose descriptions are equal are interchangeable for Node.
-- A function's language is not part of it (add_job is C here, PL/pgSQL in
-- Node's schema).  NOT NULL is a column property: the NOT NULL constraints
-- that PostgreSQL 18 lists in pg_constraint (contype 'n') are left out.
SELECT 'column ' || c.relname || '.' || a.attnum || ' ' || a.attname || ' '
       || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE a.attgenerated WHEN 's' THEN ' stored' ELSE '' END
       || CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity default' ELSE '' END
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = 'graphile_worker' AND a.attnum > 0 AND NOT a.attisdropped
   AND c.relkind IN ('r', 'v', 'c')
   AND c.relname IN ('_private_jobs', '_private_job_queues', '_private_tasks',
                     '_private_known_crontabs', 'migrations', 'jobs', 'job_spec')
UNION ALL
SELECT 'constraint ' || c.relname || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
  FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'graphile_worker' AND con.contype <> 'n'
   AND c.relname IN ('_private_jobs', '_private_job_queues', '_private_tasks',
                     '_private_known_crontabs', 'migrations')
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'graphile_worker'
   AND c.relname IN ('_private_jobs', '_private_job_queues', '_private_tasks',
                     '_private_known_crontabs', 'migrations')
UNION ALL
SELECT 'sequence ' || s.seqrelid::regclass || ' ' || format_type(s.seqtypid, NULL)
       || ' start ' || s.seqstart || ' inc ' || s.seqincrement || ' cache ' || s.seqcache
       || ' owned by ' || dc.relname || '.' || a.attname
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_depend dep ON dep.objid = s.seqrelid AND dep.classid = 'pg_class'::regclass
       AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
  JOIN pg_class dc ON dc.oid = dep.refobjid
  JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
 WHERE n.nspname = 'graphile_worker'
UNION ALL
SELECT 'rls ' || c.relname || ' ' || c.relrowsecurity || ' policies '
       || (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'graphile_worker' AND c.relkind = 'r'
   AND c.relname IN ('_private_jobs', '_private_job_queues', '_private_tasks',
                     '_private_known_crontabs', 'migrations')
UNION ALL
SELECT 'view jobs ' || pg_get_viewdef('graphile_worker.jobs'::regclass)
UNION ALL
SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') returns '
       || pg_get_function_result(p.oid)
       || CASE WHEN p.proisstrict THEN ' strict' ELSE '' END
       || ' volatility ' || p.provolatile::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'graphile_worker'
   AND p.proname IN ('add_job', 'add_jobs', 'remove_job', 'complete_jobs',
                     'permanently_fail_jobs', 'reschedule_jobs', 'force_unlock_workers')
UNION ALL
SELECT 'migrations ' || string_agg(id || CASE WHEN breaking THEN 'b' ELSE '' END, ',' ORDER BY id)
  FROM graphile_worker.migrations
ORDER BY 1;
