// js_task.cjs: a Graphile Worker task (CommonJS, so it loads whatever the
// "type" of the enclosing package.json).  It records what the Node worker
// saw -- the payload's n, the job's id, task identifier, queue name and
// attempt number -- into the table node_results that
// tests/t/020_node_interop.pl creates.
module.exports = async (payload, helpers) => {
  const { job } = helpers;
  const queue = job.job_queue_id == null ? null : await helpers.getQueueName();
  await helpers.query(
    "insert into node_results (n, job_id, task, queue, attempts) values ($1, $2, $3, $4, $5)",
    [payload.n, job.id, job.task_identifier, queue, job.attempts],
  );
};
