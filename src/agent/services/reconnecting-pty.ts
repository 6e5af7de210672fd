// Reconnecting PTYs: the web terminal's shells. A PTY outlives the connection that started it, so
// a browser tab that reloads or a network that blips gets the same shell back (with the last of
// its output replayed) under the same id.
//
// Client → agent: newline-delimited JSON `{"data"?: string, "width"?: int, "height"?: int}`.
// Agent → client: the PTY's raw output bytes.
import { EventEmitter } from "node:events";
import { homedir } from "node:os";
import type { Duplex } from "node:stream";
import { spawn, type IPty } from "@lydell/node-pty";
import { z } from "zod";
import { hangUp } from "../ssh/child.js";
import { sessionEnvironment } from "../ssh/environment.js";
import { loginShell } from "../ssh/login-shell.js";
import { LineSplitter } from "./lines.js";
import type { ServiceLogger } from "./logger.js";
import { RingBuffer } from "./ring-buffer.js";
import { endStream, ignoreErrors } from "./streams.js";

export interface ReconnectingPtyOptions {
  /** Default: the user's login shell, as for SSH sessions. */
  shell?: string;
  /** The workspace's environment, added to the agent's (as for SSH sessions). */
  env?: Record<string, string>;
  /** Where shells start (default: $HOME). */
  directory?: string;
  /** How long a PTY with no client attached stays alive (default 5 minutes). */
  timeoutMs?: number;
  /** Output kept for replay on reattach (default 64 KiB). */
  bufferBytes?: number;
  /** Output queued for one client beyond which that client is dropped (default 4 MiB). */
  maxClientBacklogBytes?: number;
  logger?: ServiceLogger;
}

export interface PtyRequest {
  id: string;
  width: number;
  height: number;
  /** Run via `shell -c` instead of a login shell; only used when the id does not exist yet. */
  command?: string;
}

export interface PtyServeContext {
  /** A logger for this client's connection (e.g. bound to the peer), else the class's. */
  logger?: ServiceLogger;
}

const MAX_INPUT_LINE = 1024 * 1024;
const TERM = "xterm-256color";

const dimension = z.number().int().min(1).max(1000);
const inputMessage = z.object({ data: z.string().optional(), width: dimension.optional(), height: dimension.optional() });

interface Client {
  stream: Duplex;
  /** write() returned false and 'drain' has not come yet. */
  congested: boolean;
}

class Pty {
  readonly clients = new Set<Client>();
  readonly exited: Promise<void>;
  private readonly ring: RingBuffer;
  private readonly writeInput: (data: string) => void;
  private idleTimer: NodeJS.Timeout | undefined;
  private paused = false;
  /** Killed, or exited by itself: takes no input and no new clients. */
  private ending = false;

  constructor(
    readonly id: string,
    private readonly term: IPty,
    private readonly opts: {
      bufferBytes: number;
      maxClientBacklogBytes: number;
      timeoutMs: number;
      logger: ServiceLogger | undefined;
      onExit: (pty: Pty) => void;
    },
  ) {
    this.ring = new RingBuffer(opts.bufferBytes);
    this.writeInput = term.write.bind(term);
    // With encoding null node-pty hands out Buffers (its types only say string).
    term.onData((data) => this.output(data as unknown as Buffer));
    this.exited = new Promise((resolve) => {
      // node-pty reports the exit only after the last output was read, so clients miss nothing.
      term.onExit(() => {
        this.ending = true;
        clearTimeout(this.idleTimer);
        for (const c of this.clients) endStream(c.stream);
        this.clients.clear();
        opts.onExit(this);
        resolve();
      });
    });
  }

  attach(stream: Duplex, width: number, height: number): Client {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.resize(width, height);
    const client: Client = { stream, congested: false };
    const replay = this.ring.contents();
    if (replay.length > 0) this.send(client, replay);
    this.clients.add(client);
    this.updateFlow();
    return client;
  }

  detach(client: Client): void {
    if (!this.clients.delete(client)) return;
    if (this.clients.size === 0 && !this.ending) {
      this.idleTimer = setTimeout(() => this.kill(), this.opts.timeoutMs);
      this.idleTimer.unref();
    }
    this.updateFlow();
  }

  input(data: string): void {
    if (!this.ending) this.writeInput(data);
  }

  resize(width: number, height: number): void {
    if (this.ending || (width === this.term.cols && height === this.term.rows)) return;
    try {
      this.term.resize(width, height);
    } catch {
      // the PTY closed meanwhile; its exit is on its way
    }
  }

  get size(): { width: number; height: number } {
    return { width: this.term.cols, height: this.term.rows };
  }

  get isEnding(): boolean {
    return this.ending;
  }

  kill(): void {
    if (this.ending) return;
    this.ending = true;
    clearTimeout(this.idleTimer);
    // A paused PTY never reports its exit (node-pty waits for its output to be read).
    this.term.resume();
    hangUp(this.term.pid, this.exited);
  }

  private output(data: Buffer): void {
    this.ring.write(data);
    for (const c of this.clients) {
      this.send(c, data);
      // A client that stays behind while others keep the PTY flowing would queue without bound.
      if (c.stream.writableLength > this.opts.maxClientBacklogBytes) {
        this.opts.logger?.warn({ id: this.id, backlog: c.stream.writableLength }, "pty: dropping a client that stopped reading");
        this.detach(c);
        c.stream.destroy();
      }
    }
    this.updateFlow();
  }

  private send(c: Client, data: Buffer): void {
    if (c.stream.write(data) || c.congested) return;
    c.congested = true;
    c.stream.once("drain", () => {
      c.congested = false;
      this.updateFlow();
    });
  }

  /**
   * Backpressure: the PTY pauses (so the program blocks on its output) only while every attached
   * client is behind; one slow viewer never stalls the others, and a PTY nobody watches keeps
   * running into its ring buffer, as a detached terminal must.
   */
  private updateFlow(): void {
    let stall = this.clients.size > 0 && !this.ending;
    for (const c of this.clients) if (!c.congested) stall = false;
    if (stall && !this.paused) this.term.pause();
    else if (!stall && this.paused) this.term.resume();
    this.paused = stall;
  }
}

export class ReconnectingPtys extends EventEmitter<{ spawn: [id: string, pid: number]; exit: [id: string] }> {
  private readonly ptys = new Map<string, Pty>();
  private readonly shell: string;
  private readonly directory: string;
  private readonly env: Record<string, string>;
  private readonly limits: { bufferBytes: number; maxClientBacklogBytes: number; timeoutMs: number };
  private closed = false;

  constructor(private readonly opts: ReconnectingPtyOptions = {}) {
    super();
    this.shell = opts.shell ?? loginShell();
    this.directory = opts.directory ?? homedir();
    this.env = { ...sessionEnvironment(this.shell, opts.env), TERM };
    this.limits = {
      bufferBytes: opts.bufferBytes ?? 64 * 1024,
      maxClientBacklogBytes: opts.maxClientBacklogBytes ?? 4 * 1024 * 1024,
      timeoutMs: opts.timeoutMs ?? 5 * 60_000,
    };
  }

  /** Live PTYs, attached or not. */
  get count(): number {
    return this.ptys.size;
  }

  /** Attaches the stream to the PTY with that id, starting it first if needed. Resolves when the stream closes. */
  serve(stream: Duplex, req: PtyRequest, ctx: PtyServeContext = {}): Promise<void> {
    const log = ctx.logger ?? this.opts.logger;
    ignoreErrors(stream);
    const closed = new Promise<void>((resolve) => {
      if (stream.destroyed) resolve();
      else stream.once("close", () => resolve());
    });
    if (this.closed || stream.destroyed) {
      stream.destroy();
      return closed;
    }
    let pty = this.ptys.get(req.id);
    // One being killed (timed out) is as good as gone: the id starts afresh.
    if (!pty || pty.isEnding) {
      try {
        pty = this.start(req);
      } catch (err) {
        // node-pty throws when it cannot start the program: tell the client, as a shell would.
        stream.write(`${this.shell}: ${(err as Error).message}\r\n`);
        endStream(stream);
        return closed;
      }
    }
    const attached = pty;
    const client = attached.attach(stream, req.width, req.height);
    log?.debug?.({ id: req.id, clients: attached.clients.size }, "pty: attached");

    let done = false;
    const leave = (reason?: string) => {
      if (done) return;
      done = true;
      attached.detach(client);
      if (reason) log?.warn({ id: req.id, reason }, "pty: dropping client");
      endStream(stream);
    };
    const lines = new LineSplitter(MAX_INPUT_LINE);
    stream.on("data", (chunk: Buffer) => {
      if (done) return;
      try {
        for (const line of lines.push(chunk)) {
          if (line.trim() === "") continue;
          const msg = inputMessage.parse(JSON.parse(line));
          if (msg.width !== undefined || msg.height !== undefined) {
            const size = attached.size;
            attached.resize(msg.width ?? size.width, msg.height ?? size.height);
          }
          if (msg.data) attached.input(msg.data);
        }
      } catch (err) {
        leave(err instanceof z.ZodError ? "invalid message" : (err as Error).message);
      }
    });
    // The client ending its side, or going away, detaches it; the PTY carries on.
    stream.once("end", () => leave());
    stream.once("close", () => leave());
    return closed;
  }

  private start(req: PtyRequest): Pty {
    const command = req.command?.trim() ? req.command : undefined;
    // As SSH sessions do: a login shell, or a command run by the shell.
    const args = command === undefined ? ["-l"] : ["-c", command];
    const term = spawn(this.shell, args, {
      name: TERM,
      cols: req.width,
      rows: req.height,
      cwd: this.directory,
      env: this.env,
      // Bytes, not strings: output split mid-character must reach the client unchanged.
      encoding: null,
    });
    const pty = new Pty(req.id, term, {
      ...this.limits,
      logger: this.opts.logger,
      onExit: (p) => {
        if (this.ptys.get(p.id) === p) this.ptys.delete(p.id);
        this.emit("exit", p.id);
      },
    });
    this.ptys.set(req.id, pty);
    this.emit("spawn", req.id, term.pid);
    return pty;
  }

  /** Kills every PTY (and ends its clients); resolves once all have exited. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.ptys.values()];
    for (const p of all) p.kill();
    await Promise.all(all.map((p) => p.exited));
  }
}
