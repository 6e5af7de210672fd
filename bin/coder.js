#!/usr/bin/env node
// The compiled CLI; `npm run build` produces dist/.
import("../dist/cli/index.js").then((m) => m.main(process.argv));
