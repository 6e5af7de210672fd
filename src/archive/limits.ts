// Bounds on what one archive may make us hold in memory or write to disk. The defaults are
// generous for a template (Terraform files, scripts, a few images) but stop a hostile upload.

export interface ArchiveLimits {
  maxEntries: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxEntries: 10_000,
  maxFileBytes: 100 * MiB,
  maxTotalBytes: 500 * MiB,
});

export function resolveLimits(partial: Partial<ArchiveLimits> = {}): ArchiveLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof ArchiveLimits)[]) {
    const v = partial[key];
    if (v === undefined) continue;
    // A NaN or negative limit would silently disable the check it is meant to configure.
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`archive limit ${key} must be a non-negative integer, got ${v}`);
    limits[key] = v;
  }
  return limits;
}
