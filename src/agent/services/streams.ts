// Small stream helpers the services share.
import type { Duplex } from "node:stream";

/**
 * Ends our side once what was written is flushed, then releases the stream: a half-open duplex
 * (a tunnel's stream) would otherwise stay open until the peer ends its side, which a peer that
 * has vanished never does. Unread input is discarded first, since a socket closed with unread
 * input resets the connection and the peer could lose what we sent.
 */
export function endStream(stream: Duplex): void {
  if (stream.destroyed) return;
  stream.resume();
  if (!stream.writableEnded) stream.end();
  if (stream.writableFinished) stream.destroy();
  else stream.once("finish", () => stream.destroy());
}

/** A stream's 'error' only means the peer went away; 'close' follows and does the cleanup. */
export function ignoreErrors(stream: Duplex): void {
  stream.on("error", () => {});
}
