-- describe_extension.sql: a text description of everything the extension
-- graphile_worker is in a database, one fact per line, without its data:
-- the extension's own row (version, configuration tables and their dump
-- conditions), every member object, and for each: tables' and views'
-- columns, constraints, indexes, triggers, policies, rules, options and
-- row-level security; views' definitions; sequences' parameters;
-- functions' whole definitions (pg_get_functiondef: arguments, result,
-- language, volatility, strictness, SECURITY DEFINER, SET options, body);
-- types; the privileges on each, in a fixed order (and the initial
-- privileges pg_dump reads from pg_init_privs); comments; the migration
-- ledger's ids.
-- Two databases whose descriptions are equal have the same extension,
-- whatever path (install, updates, adoption) brought each there.
WITH ext AS (
  SELECT * FROM pg_extension WHERE extname = 'graphile_worker'
), members AS (
  SELECT d.classid, d.objid
    FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
     AND d.deptype = 'e'
), rels AS (
  SELECT c.* FROM pg_class c JOIN members m
    ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
), procs AS (
  SELECT p.* FROM pg_proc p JOIN members m
    ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
)
SELECT 'extension ' || extname || ' ' || extversion || ' relocatable ' || extrelocatable
       || ' schema ' || extnamespace::regnamespace
  FROM ext
UNION ALL
SELECT 'extension config ' || cfg::regclass || ' condition ' || quote_literal(cond)
  FROM ext, unnest(extconfig, extcondition) AS u(cfg, cond)
UNION ALL
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
UNION ALL
SELECT 'owner ' || pg_describe_object(m.classid, m.objid, 0) || ' '
       || CASE WHEN coalesce(c.relowner, p.proowner, t.typowner, n.nspowner)
                    = (SELECT extowner FROM ext) THEN 'extension owner' ELSE 'other' END
  FROM members m
  LEFT JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  LEFT JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
  LEFT JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
  LEFT JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
UNION ALL
SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ' '
       || quote_literal(d.description)
  FROM pg_description d JOIN members m ON m.classid = d.classoid AND m.objid = d.objoid
UNION ALL
SELECT 'init privileges ' || pg_describe_object(i.classoid, i.objoid, i.objsubid) || ' '
       || i.privtype::text || ' ' || (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(i.initprivs) AS a)
  FROM pg_init_privs i JOIN members m ON m.classid = i.classoid AND m.objid = i.objoid
UNION ALL
SELECT 'schema ' || n.nspname || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(n.nspacl) AS a), '-')
  FROM pg_namespace n JOIN members m
    ON m.classid = 'pg_namespace'::regclass AND m.objid = n.oid
UNION ALL
SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text || ' persistence '
       || c.relpersistence::text || ' rls ' || c.relrowsecurity || ' force ' || c.relforcerowsecurity
       || ' options ' || coalesce(c.reloptions::text, '-') || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) AS a), '-')
  FROM rels c
UNION ALL
SELECT 'column ' || c.oid::regclass || '.' || a.attnum || ' ' || a.attname || ' '
       || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
       || CASE a.attgenerated WHEN 's' THEN ' stored' ELSE '' END
       || CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity default' ELSE '' END
       || coalesce(' collate ' || nullif(a.attcollation, t.typcollation)::regcollation::text, '')
       || coalesce(' acl ' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) AS x), '')
  FROM rels c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
UNION ALL
SELECT 'constraint ' || c.oid::regclass || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
  FROM rels c JOIN pg_constraint con ON con.conrelid = c.oid
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' invalid' END
  FROM rels c JOIN pg_index i ON i.indrelid = c.oid
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(tg.oid)
  FROM rels c JOIN pg_trigger tg ON tg.tgrelid = c.oid AND NOT tg.tgisinternal
UNION ALL
SELECT 'policy ' || c.oid::regclass || ' ' || pol.polname || ' ' || pol.polcmd::text || ' '
       || pol.polpermissive || ' to ' || (SELECT string_agg(CASE r WHEN 0 THEN 'public' ELSE r::regrole::text END, ',' ORDER BY 1)
                                          FROM unnest(pol.polroles) AS r)
       || ' using ' || coalesce(pg_get_expr(pol.polqual, pol.polrelid), '-')
       || ' check ' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '-')
  FROM rels c JOIN pg_policy pol ON pol.polrelid = c.oid
UNION ALL
SELECT 'rule ' || pg_get_ruledef(r.oid)
  FROM rels c JOIN pg_rewrite r ON r.ev_class = c.oid AND r.rulename <> '_RETURN'
UNION ALL
SELECT 'view ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid)
  FROM rels c WHERE c.relkind IN ('v', 'm')
UNION ALL
SELECT 'sequence ' || c.oid::regclass || ' ' || format_type(s.seqtypid, NULL) || ' start '
       || s.seqstart || ' increment ' || s.seqincrement || ' min ' || s.seqmin || ' max '
       || s.seqmax || ' cache ' || s.seqcache || ' cycle ' || s.seqcycle
  FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
UNION ALL
SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(t.typacl) AS a), '-')
  FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
UNION ALL
SELECT 'function ' || p.oid::regprocedure || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) AS a), '-')
       || E'\n' || pg_get_functiondef(p.oid)
  FROM procs p
UNION ALL
SELECT 'migrations ' || string_agg(id || CASE WHEN breaking THEN 'b' ELSE '' END, ',' ORDER BY id)
  FROM graphile_worker.migrations
ORDER BY 1;
