#!/bin/sh
":" //; exec node --initial-heap-size=64 "$0" "$@"
// The compiled CLI; `npm run build` produces dist/. Run as a program, the line above is sh: it
// starts node with buildinfo's nodeFlags (why: see there), portably (`env -S` is missing from
// BusyBox); to node it is a no-op string and a comment.
import("../dist/cli/index.js").then((m) => m.main(process.argv));
