import { describe, expect, it } from "vitest";
import { Outbox } from "./outbox.js";

describe("Outbox", () => {
  it("keeps lifecycle changes and log lines in order, batching lines, until acknowledged", async () => {
    const box = new Outbox();
    const signal = new AbortController().signal;
    box.lifecycle("starting");
    box.log("startup_script", "info", "one");
    box.log("startup_script", "info", "two");
    box.lifecycle("ready");
    const first = await box.next(signal);
    expect(first).toMatchObject({ method: "lifecycle", params: { state: "starting" } });
    // Not acknowledged (the connection dropped): the same item comes again.
    expect(await box.next(signal)).toBe(first);
    box.ack(first!);
    const logs = await box.next(signal);
    expect(logs?.method === "logs" && logs.params.logs.map((l) => l.output)).toEqual(["one", "two"]);
    // A batch being sent is not extended: new lines start a new batch after it.
    box.log("startup_script", "info", "three");
    if (logs?.method === "logs") expect(logs.params.logs).toHaveLength(2);
    box.ack(logs!);
    expect(await box.next(signal)).toMatchObject({ method: "lifecycle", params: { state: "ready" } });
  });

  it("numbers lines increasingly and stops handing out items once aborted", async () => {
    const box = new Outbox();
    box.log("s", "info", "a");
    box.log("s", "info", "b");
    const abort = new AbortController();
    const item = await box.next(abort.signal);
    const seqs = item?.method === "logs" ? item.params.logs.map((l) => l.seq) : [];
    expect(seqs[1]! - seqs[0]!).toBe(1);
    abort.abort();
    expect(await box.next(abort.signal)).toBeUndefined();
  });
});
