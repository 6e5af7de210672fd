// Runs a session's program without a terminal: stdin, stdout and stderr on separate pipes, so the
// client gets stderr as SSH extended data and binary output (scp -O, tar over ssh) unchanged.
import { spawn } from "node:child_process";
import type { ServerChannel } from "ssh2";
import { hangUp, signalProcess, sshSignalName, type ExitInfo, type SessionChild } from "./child.js";

export function startPipes(channel: ServerChannel, opts: { file: string; args: string[]; cwd: string; env: Record<string, string> }): SessionChild {
  // detached: its own process group, so a hangup reaches what it started too.
  const child = spawn(opts.file, opts.args, { cwd: opts.cwd, env: opts.env, stdio: ["pipe", "pipe", "pipe"], detached: true });
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once("error", () => resolve({ code: 127, signal: null }));
    // "close", not "exit": only once stdout and stderr are drained into the channel.
    child.once("close", (code, signal) => {
      const name = sshSignalName(signal);
      resolve(name ? { code: null, signal: name } : { code: code ?? 0, signal: null });
    });
  });
  // The program may exit without reading its input: writing to the closed pipe is not an error.
  child.stdin.on("error", () => {});
  channel.pipe(child.stdin);
  child.stdout.pipe(channel, { end: false });
  child.stderr.pipe(channel.stderr, { end: false });
  return {
    pid: child.pid ?? -1,
    exited,
    resize: () => {},
    signal: (name) => {
      if (child.pid !== undefined) signalProcess(child.pid, name);
    },
    kill: () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) hangUp(child.pid, exited);
    },
  };
}
