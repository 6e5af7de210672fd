#!/usr/bin/env -S node --initial-heap-size=64
// The compiled CLI; `npm run build` produces dist/. The shebang's V8 flags are buildinfo's nodeFlags (why: see there).
import("../dist/cli/index.js").then((m) => m.main(process.argv));
