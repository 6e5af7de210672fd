// The shell sessions run in when the workspace does not name one: the user's login shell.
import { existsSync } from "node:fs";
import { userInfo } from "node:os";

export function loginShell(): string {
  try {
    // From /etc/passwd (getpwuid), as sshd uses, not $SHELL: the agent's own environment may
    // come from a container entrypoint that never set it.
    const shell = userInfo().shell;
    if (shell && existsSync(shell)) return shell;
  } catch {
    // no passwd entry for this uid (containers often run with arbitrary uids)
  }
  return "/bin/sh";
}
