// A fresh database per test, cloned from the migrated template; dropped when the test ends.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject, onTestFinished } from "vitest";

// CREATE DATABASE … TEMPLATE fails if anyone else is connected to the template at that moment,
// so clones are serialized within a worker and retried across workers.
let chain: Promise<unknown> = Promise.resolve();

async function cloneTemplate(admin: pg.Client, name: string, template: string | null): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "55006" || attempt > 50) throw err;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    }
  }
}

/** A connection URL to a new database: migrated unless `empty` is set. Dropped after the test. */
export async function createTestDatabase(opts: { empty?: boolean; keep?: boolean } = {}): Promise<string> {
  const adminUrl = inject("pgAdminUrl");
  const name = `t_${randomBytes(6).toString("hex")}`;
  const run = chain.then(async () => {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await cloneTemplate(admin, name, opts.empty ? null : inject("pgTemplate"));
    } finally {
      await admin.end();
    }
  });
  chain = run.catch(() => {});
  await run;
  if (!opts.keep) {
    onTestFinished(async () => {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await admin.end();
    });
  }
  return adminUrl.replace("/postgres?", `/${name}?`);
}
