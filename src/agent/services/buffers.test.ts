// The small byte-handling pieces: the replay ring buffer, the input line splitter, the meter.
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { LineSplitter, LineTooLongError } from "./lines.js";
import { meter } from "./meter.js";
import { RingBuffer } from "./ring-buffer.js";

describe("RingBuffer", () => {
  it("keeps the last capacity bytes, in order, across wraps", () => {
    const ring = new RingBuffer(8);
    expect(ring.contents().toString()).toBe("");
    ring.write(Buffer.from("abc"));
    expect(ring.contents().toString()).toBe("abc");
    ring.write(Buffer.from("defgh"));
    expect(ring.contents().toString()).toBe("abcdefgh");
    ring.write(Buffer.from("ij"));
    expect(ring.contents().toString()).toBe("cdefghij");
    ring.write(Buffer.from("klmnopq"));
    expect(ring.contents().toString()).toBe("jklmnopq");
    ring.write(Buffer.from("0123456789"));
    expect(ring.contents().toString()).toBe("23456789");
  });
});

describe("LineSplitter", () => {
  it("splits across chunks and keeps multi-byte characters whole", () => {
    const lines = new LineSplitter(100);
    const text = Buffer.from('{"data":"é"}\n{"da');
    expect(lines.push(text.subarray(0, 10))).toEqual([]);
    expect(lines.push(text.subarray(10))).toEqual(['{"data":"é"}']);
    expect(lines.push(Buffer.from('ta":"x"}\n\n'))).toEqual(['{"data":"x"}', ""]);
  });

  it("refuses a line over the limit, with or without its newline", () => {
    expect(() => new LineSplitter(4).push(Buffer.from("12345\n"))).toThrow(LineTooLongError);
    const lines = new LineSplitter(4);
    lines.push(Buffer.from("123"));
    expect(() => lines.push(Buffer.from("45"))).toThrow(LineTooLongError);
  });
});

describe("meter", () => {
  it("counts what arrives and what is written, including end(chunk), leaving flow alone", async () => {
    const stream = new PassThrough();
    let rx = 0;
    let tx = 0;
    meter(
      stream,
      (n) => (rx += n),
      (n) => (tx += n),
    );
    stream.write("héllo");
    stream.end(Buffer.from("!!"));
    expect(tx).toBe(8);
    // Nothing read yet: counting did not start the flow.
    expect(stream.readableFlowing).toBe(null);
    let read = 0;
    for await (const chunk of stream) read += (chunk as Buffer).length;
    expect(read).toBe(8);
    expect(rx).toBe(8);
  });
});
