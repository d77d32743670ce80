-- settings_prefix: the preloaded library owns the graphile_worker.* settings
-- and reserves the prefix, so that a misspelt setting is an error rather
-- than a silent placeholder.  Reserving a prefix (MarkGUCPrefixReserved)
-- came with PostgreSQL 15; before it the library can only warn about
-- placeholders that exist when it loads (EmitWarningsOnPlaceholders), and
-- the SET below succeeds: expected/settings_prefix_1.out.
SHOW graphile_worker.databases;
SET graphile_worker.no_such_setting = 1;
