// What a session channel needs from the program it runs, whether on a PTY or on plain pipes.
import { constants } from "node:os";

export interface ExitInfo {
  code: number | null;
  /** Set when the program was killed by a signal: "TERM", "KILL"… (SSH's names, without "SIG"). */
  signal: string | null;
}

export interface SessionChild {
  readonly pid: number;
  /** Resolves once the program has exited and all of its output has been forwarded. */
  readonly exited: Promise<ExitInfo>;
  resize(cols: number, rows: number): void;
  signal(name: string): void;
  /** Hangs up the program's whole process group, and kills what survives that. */
  kill(): void;
}

const GRACE_MS = 3_000;

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // the whole group is gone
  }
}

/**
 * The program leads its own process group (a PTY's session, or a detached spawn), so a hangup
 * reaches what it started too; SIGKILL follows for whatever ignores SIGHUP (nohup, daemons that
 * stayed in the group), as sshd's hangup would leave those behind in a workspace nobody watches.
 */
export function hangUp(pid: number, exited: Promise<unknown>): void {
  signalGroup(pid, "SIGHUP");
  const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), GRACE_MS);
  timer.unref();
  void exited.then(() => {
    clearTimeout(timer);
    // The leader is gone; members that ignored the hangup are still in the group.
    signalGroup(pid, "SIGKILL");
  });
}

/** A "signal" channel request: SSH names it without "SIG"; names unknown here are ignored. */
export function signalProcess(pid: number, name: string): void {
  const sig = (name.startsWith("SIG") ? name : `SIG${name}`) as NodeJS.Signals;
  if (!(sig in constants.signals)) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** A signal number (as node-pty reports it) or node name → SSH's signal name. */
export function sshSignalName(sig: number | string | null | undefined): string | null {
  if (sig === null || sig === undefined || sig === 0) return null;
  if (typeof sig === "string") return sig.replace(/^SIG/, "");
  const name = Object.entries(constants.signals).find(([, n]) => n === sig)?.[0];
  return name ? name.replace(/^SIG/, "") : null;
}
