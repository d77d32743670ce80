// noop.cjs: the benchmark's no-op task for the Node worker: returns at once.
module.exports = async () => {};
