/*
 * graphile_worker--0.1.0--0.2.0.sql: the update from 0.1.0 to 0.2.0.
 *
 * A database gets 0.2.0 either with ALTER EXTENSION graphile_worker UPDATE
 * or, for a new install, from CREATE EXTENSION, which runs the 0.1.0 script
 * and then this one.  Released scripts are never edited; each change to the
 * extension's SQL objects goes into the update script of the next version.
 *
 * Nothing here touches the objects Graphile Worker's Node and Rust ports
 * know (the _private_* tables, the jobs view, job_spec, migrations) beyond
 * what they accept.
 */

\echo Use "ALTER EXTENSION graphile_worker UPDATE TO '0.2.0'" to load this file. \quit
