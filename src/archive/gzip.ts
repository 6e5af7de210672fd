// Bounded gunzip: a few KiB of gzip can expand to gigabytes, so the output is capped while it is
// produced rather than checked afterwards.
import { constants as bufferConstants } from "node:buffer";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { ArchiveError } from "./errors.js";

const gunzipAsync = promisify(gunzip);

export async function gunzipBounded(data: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  try {
    return await gunzipAsync(data, { maxOutputLength: Math.max(1, Math.min(maxBytes, bufferConstants.MAX_LENGTH)) });
  } catch (err) {
    throw zlibError(err, "gzip data", `decompressed archive is larger than ${maxBytes} bytes`);
  }
}

/** Maps a zlib failure onto an ArchiveError; `tooLarge` is the message for an output-cap hit. */
export function zlibError(err: unknown, what: string, tooLarge: string, entry?: string): ArchiveError {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ERR_BUFFER_TOO_LARGE") return new ArchiveError(tooLarge, entry);
  if (code === "Z_BUF_ERROR") return new ArchiveError(`truncated ${what}`, entry);
  const detail = err instanceof Error ? err.message : String(err);
  return new ArchiveError(`corrupt ${what}: ${detail}`, entry);
}
