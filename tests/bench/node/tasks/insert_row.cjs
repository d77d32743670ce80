// insert_row.cjs: the benchmark's INSERT task for the Node worker: one row
// with the job id and the database clock (clock_timestamp()) when the task
// ran, through the worker's own pool (helpers.query).  The extension's
// counterpart is graphile_worker_tasks.insert_row in tests/bench/ours.sql.
module.exports = async (_payload, helpers) => {
  await helpers.query(
    "insert into public.bench_sink (job_id, at) values ($1, clock_timestamp())",
    [helpers.job.id],
  );
};
