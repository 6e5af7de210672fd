// The client's end of a UDP direct path: its own UDX socket, a HELLO retransmitted with backoff
// until the listener's OK names its stream id, then a stream connected to it. The socket closes
// when the stream does.
import { createStream, decodeOk, encodeHello, parseUdpEndpoint, udx, type UdxStream } from "./wire.js";

export interface DialUdxOptions {
  /** Aborting gives up at once (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** First retransmit after this; each next one after twice as long. Default 100 ms. */
  retransmitMs?: number;
}

/** Connects a UDX stream to the UdxListener at `endpoint` ("udp:<ip>:<port>"), or rejects within timeoutMs. */
export function dialUdx(endpoint: string, timeoutMs: number, opts: DialUdxOptions = {}): Promise<UdxStream> {
  let target: { host: string; port: number };
  try {
    target = parseUdpEndpoint(endpoint);
  } catch (err) {
    return Promise.reject(err);
  }
  if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
  const { host, port } = target;
  const socket = udx().createSocket();
  try {
    socket.bind(0, host.includes(":") ? "::" : "0.0.0.0");
  } catch (err) {
    void socket.close();
    return Promise.reject(err);
  }
  const stream = createStream();
  const hello = encodeHello(stream.id);
  return new Promise<UdxStream>((resolve, reject) => {
    let retransmit: NodeJS.Timeout | undefined;
    const finish = (err?: Error) => {
      clearTimeout(deadline);
      clearTimeout(retransmit);
      socket.off("message", onMessage);
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) {
        stream.destroy();
        void socket.close();
        reject(err);
      } else {
        resolve(stream);
      }
    };
    const onAbort = () => finish(opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error("aborted"));
    const onMessage = (msg: Buffer, from: { host: string; port: number }) => {
      if (from.port !== port || from.host !== host) return; // only the listener we asked may answer
      const ok = decodeOk(msg);
      if (!ok || ok[0] !== stream.id) return;
      try {
        stream.connect(socket, ok[1], port, host);
      } catch (err) {
        finish(err as Error);
        return;
      }
      stream.once("close", () => void socket.close());
      finish();
    };
    let wait = opts.retransmitMs ?? 100;
    const send = () => {
      socket.trySend(hello, port, host);
      retransmit = setTimeout(send, wait);
      wait *= 2;
    };
    const deadline = setTimeout(() => finish(new Error(`${endpoint} did not answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on("message", onMessage);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    send();
  });
}
