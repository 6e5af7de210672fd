import { describe, expect, it } from "vitest";
import { parseProcNetTcp } from "./ports.js";

describe("parseProcNetTcp", () => {
  it("keeps listening sockets only", () => {
    const text = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12347 1 0000000000000000 100 0 0 10 0
`;
    expect(parseProcNetTcp(text)).toEqual([8080, 22]);
    expect(parseProcNetTcp("")).toEqual([]);
  });
});
