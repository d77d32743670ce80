// graphile.config.mjs: Node graphile-worker's batching configuration, the
// "perf preset" of https://worker.graphile.org/docs/performance: a local
// queue of 500 jobs fetched at once and job completions/failures batched
// (delay 0).  tests/bench/bench.sh passes it with -C; concurrency comes from
// -j (24 in the docs' preset) and the pool size from -m (concurrency + 1).
export default {
  worker: {
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};
