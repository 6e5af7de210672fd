// tsc emits only JavaScript; the SQL migrations ship beside the compiled database module.
import { cpSync, rmSync } from "node:fs";

rmSync("dist/database/migrations", { recursive: true, force: true });
cpSync("src/database/migrations", "dist/database/migrations", { recursive: true });
