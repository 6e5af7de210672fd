// App health checks: each app with a health check is probed every interval; it is healthy after
// a success and unhealthy after `threshold` failures in a row.
export type AppHealth = "initializing" | "healthy" | "unhealthy";

export interface HealthCheckedApp {
  slug: string;
  healthcheck: { url: string; interval: number; threshold: number } | null;
}

export function checkAppHealth(apps: HealthCheckedApp[], onChange: (slug: string, health: AppHealth) => void): () => void {
  // One pending timer per item, replaced each round.
  const timers: Array<NodeJS.Timeout | undefined> = [];
  let stopped = false;
  for (const [i, app] of apps.entries()) {
    const hc = app.healthcheck;
    if (!hc) continue;
    let failures = 0;
    let state: AppHealth = "initializing";
    const set = (next: AppHealth) => {
      if (next !== state) {
        state = next;
        onChange(app.slug, next);
      }
    };
    const probe = async () => {
      try {
        const res = await fetch(hc.url, { signal: AbortSignal.timeout(Math.max(1, hc.interval) * 1000), redirect: "manual" });
        await res.body?.cancel();
        if (res.status >= 500) throw new Error(String(res.status));
        failures = 0;
        set("healthy");
      } catch {
        if (++failures >= hc.threshold) set("unhealthy");
      }
    };
    const loop = () => {
      void probe().finally(() => {
        if (!stopped) timers[i] = setTimeout(loop, hc.interval * 1000);
      });
    };
    loop();
  }
  return () => {
    stopped = true;
    for (const t of timers) if (t) clearTimeout(t);
  };
}
