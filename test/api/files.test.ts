// Uploading template archives: good ones are stored once (content-addressed); malicious or
// malformed ones are refused with a message naming the entry, and nothing is stored.
import { describe, expect, it } from "vitest";
import { packDirectory } from "../../src/archive/index.js";
import { tarOf } from "../../src/archive/testutil/builders.js";
import { isCoderSDKError, type CoderSDKError } from "../../src/codersdk/index.js";
import { createFirstUser, startTestServer } from "../helpers/coderd.js";
import { writeTemplateDir } from "../helpers/templates.js";

describe("POST /api/v2/files", () => {
  it("stores an archive once, by content, and serves it back byte for byte", async () => {
    const srv = await startTestServer();
    const { client } = await createFirstUser(srv);
    const archive = await packDirectory(writeTemplateDir());
    const a = await client.uploadFile(archive);
    const b = await client.uploadFile(archive);
    expect(b).toEqual(a);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    const res = await fetch(`${srv.url}/api/v2/files/${a.id}`, { headers: { "Coder-Session-Token": client.sessionToken! } });
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(archive))).toBe(true);
  });

  it.each([
    ["a parent-directory escape", [{ name: "../evil.sh", content: "x" }], "../evil.sh"],
    ["a nested escape", [{ name: "a/../../evil", content: "x" }], "a/../../evil"],
    ["an absolute path", [{ name: "/etc/cron.d/evil", content: "x" }], "/etc/cron.d/evil"],
    ["a symlink out of the archive", [{ name: "link", type: "symlink", target: "/etc" }], "link"],
    ["a relative symlink escape", [{ name: "sub/link", type: "symlink", target: "../../outside" }], "sub/link"],
    ["a write through a symlink", [{ name: "dir", type: "symlink", target: "sub" }, { name: "sub/", type: "directory" }, { name: "dir/x", content: "x" }], "dir/x"],
    ["a hard link", [{ name: "a", content: "x" }, { name: "b", type: "link", target: "a" }], "b"],
    ["a device file", [{ name: "dev", type: "character-device" }], "dev"],
  ] as const)("refuses %s", async (_what, specs, entry) => {
    const srv = await startTestServer();
    const { client } = await createFirstUser(srv);
    const err = (await client.uploadFile(await tarOf(specs as never)).catch((e: unknown) => e)) as CoderSDKError;
    expect(isCoderSDKError(err, 400)).toBe(true);
    expect(err.response.message).toBe("The archive is not acceptable.");
    expect(err.response.detail).toContain(`"${entry}"`);
    expect(await srv.db.store.kysely.selectFrom("files").select("id").execute()).toEqual([]);
  });

  it("refuses garbage, wrong content types, empty and oversized bodies", async () => {
    const srv = await startTestServer();
    const { client } = await createFirstUser(srv);
    const garbage = (await client.uploadFile(new TextEncoder().encode("definitely not a tar file".repeat(40))).catch((e: unknown) => e)) as CoderSDKError;
    expect(garbage.status).toBe(400);
    expect(garbage.response.message).toBe("The upload is not a tar or zip archive.");
    const wrongType = (await client.uploadFile(await packDirectory(writeTemplateDir()), "text/plain").catch((e: unknown) => e)) as CoderSDKError;
    expect(wrongType.status).toBe(415);
    const empty = (await client.uploadFile(new Uint8Array(0)).catch((e: unknown) => e)) as CoderSDKError;
    expect(empty.status).toBe(400);
    const huge = (await client.uploadFile(new Uint8Array(11 * 1024 * 1024)).catch((e: unknown) => e)) as CoderSDKError;
    expect(huge.status).toBe(413);
    expect(await srv.db.store.kysely.selectFrom("files").select("id").execute()).toEqual([]);
  });
});
