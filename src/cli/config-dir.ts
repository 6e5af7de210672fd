// The CLI's own state in the config dir: the deployment URL and the session token (mode 0600).
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export class ConfigDir {
  constructor(readonly path: string) {}

  private file(name: string) {
    return join(this.path, name);
  }

  read(name: "url" | "session"): string | undefined {
    const f = this.file(name);
    return existsSync(f) ? readFileSync(f, "utf8").trim() || undefined : undefined;
  }

  write(name: "url" | "session", value: string): void {
    mkdirSync(this.path, { recursive: true, mode: 0o700 });
    const f = this.file(name);
    writeFileSync(f, value, { mode: 0o600 });
    chmodSync(f, 0o600);
  }

  remove(name: "url" | "session"): void {
    rmSync(this.file(name), { force: true });
  }
}
