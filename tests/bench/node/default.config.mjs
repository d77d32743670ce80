// default.config.mjs: Node graphile-worker with its default configuration
// (an empty preset); tests/bench/bench.sh passes it with -C so that no
// graphile.config.* lying in the working folder is picked up instead.
export default {};
