// End-to-end encrypted peer sessions carrying multiplexed streams (see session.ts and mux.ts).
export { Session } from "./session.js";
export type { AcceptOptions, InitiateOptions, SessionOptions, SessionStats, SessionStream, SessionTransport } from "./session.js";
export { MuxStream, ProtocolError, DEFAULT_RECEIVE_WINDOW, INITIAL_WINDOW, MAX_DATA_PAYLOAD, MAX_OPEN_HEADER_BYTES } from "./mux.js";
export { ResumableStreams } from "./resumable-streams.js";
