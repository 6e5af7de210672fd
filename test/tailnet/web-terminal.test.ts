// The web terminal: a WebSocket to a reconnecting PTY on a real agent, through coderd's tunnel.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Client, Workspace, WorkspaceAgent } from "../../src/codersdk/index.js";
import { createFirstUser, createUserWithRoles, startTestServer, type TestServer } from "../helpers/coderd.js";
import { deleteWorkspace, runningWorkspace } from "../helpers/workspaces.js";

let srv: TestServer;
let owner: Client;
let member: Client;
let workspace: Workspace;
let agent: WorkspaceAgent;

beforeAll(async () => {
  srv = await startTestServer({ provisionerDaemons: 1, manualClose: true });
  owner = (await createFirstUser(srv)).client;
  member = (await createUserWithRoles(srv, owner, "member")).client;
  ({ workspace, agent } = await runningWorkspace(owner, "term"));
});

afterAll(async () => {
  if (workspace) await deleteWorkspace(owner, workspace);
  await srv?.close();
});

interface Terminal {
  ws: WebSocket;
  /** Everything received so far, decoded. */
  output(): string;
  /** Resolves once the output matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  send(msg: object): void;
  closed: Promise<{ code: number; reason: string }>;
}

function ptyPath(agentId: string, query: Record<string, string>): string {
  return `/api/v2/workspaceagents/${agentId}/pty?${new URLSearchParams(query)}`;
}

async function openTerminal(c: Client, query: Record<string, string>): Promise<Terminal> {
  const ws = new WebSocket(`${srv.url.replace("http", "ws")}${ptyPath(agent.id, query)}`, { headers: { "Coder-Session-Token": c.sessionToken! } });
  const chunks: Buffer[] = [];
  const binary: boolean[] = [];
  const waiters = new Set<() => void>();
  ws.on("message", (data, isBinary) => {
    chunks.push(data as Buffer);
    binary.push(isBinary);
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
  const output = () => Buffer.concat(chunks).toString("utf8");
  return {
    ws,
    output,
    closed,
    send: (msg) => ws.send(JSON.stringify(msg)),
    waitFor: (re, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!re.test(output())) return;
          waiters.delete(check);
          clearTimeout(timer);
          expect(binary.every(Boolean)).toBe(true);
          resolve(output());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${re}; got: ${JSON.stringify(output().slice(-500))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

describe("web terminal", () => {
  it("runs a shell, resizes, and replays recent output on reconnect", async () => {
    const id = randomUUID();
    const t = await openTerminal(owner, { reconnect: id, width: "80", height: "24" });
    t.send({ data: "echo hi-$((2+3))\r" });
    await t.waitFor(/hi-5/);
    t.send({ height: 40, width: 100 });
    t.send({ data: "stty size\r" });
    await t.waitFor(/40 100/);
    t.ws.close();
    await t.closed;

    const again = await openTerminal(owner, { reconnect: id, width: "100", height: "40" });
    // The same shell, with what it printed before replayed first.
    await again.waitFor(/hi-5/);
    again.send({ data: "echo still-$((6*7))\r" });
    await again.waitFor(/still-42/);
    again.ws.close();
    await again.closed;
  });

  it("runs a command instead of a shell, and closes when it ends", async () => {
    const t = await openTerminal(owner, { reconnect: randomUUID(), command: "echo cmd-$((1+1)); sleep 0.2" });
    await t.waitFor(/cmd-2/);
    expect((await t.closed).code).toBe(1000);
  });

  it("closes on a malformed message, naming what is wrong", async () => {
    const t = await openTerminal(owner, { reconnect: randomUUID() });
    t.ws.send("not json");
    const closed = await t.closed;
    expect(closed.code).toBe(1007);
    expect(closed.reason).toMatch(/invalid message/);
    const u = await openTerminal(owner, { reconnect: randomUUID() });
    u.send({ width: "wide" });
    const c2 = await u.closed;
    expect(c2.code).toBe(1007);
    expect(c2.reason).toMatch(/width/);
  });

  it("rejects bad query parameters with a 400 naming the field", async () => {
    const get = (query: Record<string, string>, c: Client = owner) =>
      fetch(`${srv.url}${ptyPath(agent.id, query)}`, { headers: { "Coder-Session-Token": c.sessionToken! } });
    const cases: Array<[Record<string, string>, string]> = [
      [{ width: "80", height: "24" }, "reconnect"],
      [{ reconnect: "has spaces!" }, "reconnect"],
      [{ reconnect: randomUUID(), width: "abc" }, "width"],
      [{ reconnect: randomUUID(), height: "0" }, "height"],
      [{ reconnect: randomUUID(), width: "5000" }, "width"],
      [{ reconnect: randomUUID(), command: "x".repeat(5000) }, "command"],
    ];
    for (const [query, field] of cases) {
      const res = await get(query);
      expect(res.status, JSON.stringify(query)).toBe(400);
      const body = (await res.json()) as { validations: Array<{ field: string }> };
      expect(body.validations[0]!.field).toBe(field);
    }
    // Valid, but not a WebSocket upgrade.
    expect((await get({ reconnect: randomUUID() })).status).toBe(400);
  });

  it("hides other users' agents and refuses the anonymous", async () => {
    const query = { reconnect: randomUUID() };
    const asMember = await fetch(`${srv.url}${ptyPath(agent.id, query)}`, { headers: { "Coder-Session-Token": member.sessionToken! } });
    expect(asMember.status).toBe(404);
    await expect(openTerminal(member, query)).rejects.toThrow(/unexpected response 404/);
    expect((await fetch(`${srv.url}${ptyPath(agent.id, query)}`)).status).toBe(401);
    expect((await fetch(`${srv.url}${ptyPath(randomUUID(), query)}`, { headers: { "Coder-Session-Token": owner.sessionToken! } })).status).toBe(404);
  });
});
