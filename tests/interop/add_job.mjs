// add_job.mjs: enqueue one job through graphile-worker's own
// WorkerUtils.addJob (the Node package's code path, not ours), connecting
// with the PG* environment variables; print the job it got back as JSON.
// Used by tests/t/020_node_interop.pl, which copies this file next to the
// node_modules folder holding graphile-worker so that the import resolves.
import { makeWorkerUtils } from "graphile-worker";

const utils = await makeWorkerUtils({});
try {
  const job = await utils.addJob(
    "node_task",
    { from: "node" },
    { queueName: "q1", jobKey: "nk" },
  );
  console.log(
    JSON.stringify({
      id: String(job.id),
      task_identifier: job.task_identifier,
      key: job.key,
    }),
  );
} finally {
  await utils.release();
}
