// Runs a session's program on a pseudo-terminal (node-pty), its I/O joined to the SSH channel.
import { spawn, type IPty } from "@lydell/node-pty";
import type { ServerChannel } from "ssh2";
import { hangUp, sshSignalName, signalProcess, type ExitInfo, type SessionChild } from "./child.js";

export interface PtyRequest {
  term: string;
  cols: number;
  rows: number;
}

export function startPty(
  channel: ServerChannel,
  opts: { file: string; args: string[]; cwd: string; env: Record<string, string>; pty: PtyRequest },
): SessionChild {
  const term: IPty = spawn(opts.file, opts.args, {
    name: opts.pty.term || "xterm",
    cols: opts.pty.cols || 80,
    rows: opts.pty.rows || 24,
    cwd: opts.cwd,
    env: { ...opts.env, TERM: opts.pty.term || "xterm" },
    // Bytes, not strings: output split mid-character, or not UTF-8 at all, must pass unchanged.
    encoding: null,
  });
  // With encoding null node-pty hands out and accepts Buffers (its types only say string).
  const write = term.write.bind(term) as unknown as (data: Buffer) => void;
  term.onData((data) => {
    if (!channel.write(data as unknown as Buffer)) {
      // The client is not reading: stop reading the PTY, so the program blocks on its output.
      term.pause();
      channel.once("drain", () => term.resume());
    }
  });
  channel.on("data", (data: Buffer) => write(data));
  // EOF from the client does not end a terminal session (as with sshd); the program decides.
  channel.on("end", () => {});
  const exited = new Promise<ExitInfo>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      const name = sshSignalName(signal);
      resolve(name ? { code: null, signal: name } : { code: exitCode, signal: null });
    });
  });
  return {
    pid: term.pid,
    exited,
    resize: (cols, rows) => {
      try {
        if (cols > 0 && rows > 0) term.resize(cols, rows);
      } catch {
        // the PTY is already closed
      }
    },
    signal: (name) => signalProcess(term.pid, name),
    kill: () => hangUp(term.pid, exited),
  };
}

