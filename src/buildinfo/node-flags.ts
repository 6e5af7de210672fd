// Its own module, free of side effects, so benchmarks compiled elsewhere can import it.

/**
 * V8 flags every `coder` process runs with (bin/coder.js's shebang and `npm start` carry the same).
 * Tunnels allocate a Buffer per read and per frame, hundreds of MB/s; V8 counts those bytes
 * against the old generation's limit, which after the first full GC is only about twice the live
 * heap (~20 MB here), so a busy tunnel ran a full GC every 60-100 ms and spent a third of its CPU
 * on marking. With a 64 MB initial heap, V8 skips full GCs below that size and the short-lived
 * buffers die in cheap scavenges instead: tunnel throughput rose 1.5x (bench/tunnel.ts).
 */
export const nodeFlags: readonly string[] = ["--initial-heap-size=64"];
