// The resumable streams an acceptor (the agent) holds, across its sessions: a stream whose session
// died waits here, suspended, for its opener to resume it on another session. Only the peer that
// opened a stream may resume it: the token is looked up together with the peer's verified key.
import type { MuxStream } from "./mux.js";

export class ResumableStreams {
  private readonly byToken = new Map<string, { peer: string; stream: MuxStream }>();

  /** Streams kept (live or suspended). */
  get size(): number {
    return this.byToken.size;
  }

  /** Streams waiting for their opener to resume them. */
  get suspended(): number {
    let n = 0;
    for (const e of this.byToken.values()) if (e.stream.suspended) n++;
    return n;
  }

  /** Fails the streams still waiting for their opener (all, or one peer's); returns how many. */
  destroySuspended(err: Error, peer?: Uint8Array): number {
    const only = peer && Buffer.from(peer).toString("hex");
    let n = 0;
    for (const e of [...this.byToken.values()]) {
      if (!e.stream.suspended || (only && e.peer !== only)) continue;
      e.stream.destroy(err);
      n++;
    }
    return n;
  }

  /** @internal false when the token is taken (by anyone: tokens are random, a clash is a misuse). */
  add(peer: Uint8Array, token: string, stream: MuxStream): boolean {
    if (this.byToken.has(token)) return false;
    const entry = { peer: Buffer.from(peer).toString("hex"), stream };
    this.byToken.set(token, entry);
    stream.once("close", () => {
      if (this.byToken.get(token) === entry) this.byToken.delete(token);
    });
    return true;
  }

  /** @internal */
  find(peer: Uint8Array, token: string): MuxStream | undefined {
    const entry = this.byToken.get(token);
    if (!entry || entry.peer !== Buffer.from(peer).toString("hex")) return undefined;
    return entry.stream;
  }
}
