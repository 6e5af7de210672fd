// A web app for workspaces in tests: a Node script (built-ins only) that the startup script writes
// and starts. It answers every request with what it received (method, url, headers, body hash),
// echoes POST bodies at /raw, tries to set Coder's cookie at /set-cookie, and speaks a minimal
// WebSocket echo (the message "headers" gets the upgrade request's headers back).
import { execPath } from "node:process";

const APP_JS = String.raw`
const http = require("http");
const crypto = require("crypto");
const fs = require("fs");
const port = Number(process.argv[2]);
setTimeout(() => process.exit(0), 15 * 60 * 1000);
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.url.startsWith("/raw")) {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return res.end(body);
    }
    if (req.url.startsWith("/set-cookie")) res.setHeader("set-cookie", ["coder_session_token=planted; Path=/", "app_cookie=ok; Path=/"]);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, length: body.length, sha256: crypto.createHash("sha256").update(body).digest("hex") }));
  });
});
function frame(op, payload) {
  let head;
  if (payload.length < 126) head = Buffer.from([0x80 | op, payload.length]);
  else if (payload.length < 65536) { head = Buffer.alloc(4); head[0] = 0x80 | op; head[1] = 126; head.writeUInt16BE(payload.length, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x80 | op; head[1] = 127; head.writeBigUInt64BE(BigInt(payload.length), 2); }
  return Buffer.concat([head, payload]);
}
server.on("upgrade", (req, socket, head) => {
  const accept = crypto.createHash("sha1").update(req.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n");
  let buf = head;
  socket.on("error", () => socket.destroy());
  socket.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const masked = (buf[1] & 0x80) !== 0;
      const maskAt = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= buf[maskAt + (i % 4)];
      buf = buf.subarray(off + len);
      if (op === 8) return void socket.end(frame(8, Buffer.alloc(0)));
      if (op === 9) { socket.write(frame(10, payload)); continue; }
      if (op === 1 && payload.toString() === "headers") socket.write(frame(1, Buffer.from(JSON.stringify({ url: req.url, headers: req.headers }))));
      else socket.write(frame(op, payload));
    }
  });
});
server.listen(port, "127.0.0.1", () => fs.writeFileSync("app-ready-" + port, ""));
`;

/** Startup script lines that start the app on the port and wait until it listens. */
export function startAppScript(port: number): string {
  const b64 = Buffer.from(APP_JS).toString("base64");
  return [
    `echo ${b64} | base64 -d > app-${port}.js`,
    `nohup "${execPath}" app-${port}.js ${port} > app-${port}.log 2>&1 &`,
    `i=0; while [ ! -f app-ready-${port} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done`,
  ].join("\n");
}

export interface AppSpec {
  slug: string;
  url: string;
  share?: "owner" | "authenticated" | "public";
  subdomain?: boolean;
}

/** A local template whose one agent ("main") starts the app on `port` and declares `apps`. */
export function appTemplate(port: number, apps: AppSpec[]): Record<string, string> {
  const indent = (text: string, n: number) =>
    text
      .split("\n")
      .map((l) => " ".repeat(n) + l)
      .join("\n");
  const appsYaml = apps
    .map((a) => [`      - slug: ${a.slug}`, `        url: ${a.url}`, `        share: ${a.share ?? "owner"}`, `        subdomain: ${a.subdomain ?? false}`].join("\n"))
    .join("\n");
  return {
    "template.yaml": `agents:
  - name: main
    startup_script_behavior: blocking
    startup_script: |
${indent(startAppScript(port), 6)}
    apps:
${appsYaml}
`,
  };
}
