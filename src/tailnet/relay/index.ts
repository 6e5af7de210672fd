// The embedded relay: server, client with pair streams, and the wire format.
export { RelayServer, type RelayServerOptions, type RelayStats } from "./server.js";
export { RelayClient, type RelayClientOptions, relayWebSocketUrl } from "./client.js";
export { RelayConn } from "./pair.js";
export type { RelayLogger } from "./logger.js";
export {
  CloseCode as RelayCloseCode,
  FrameError,
  FrameType,
  MAX_BODY as RELAY_MAX_BODY,
  MAX_FRAME as RELAY_MAX_FRAME,
  relayWebSocketServerOptions,
} from "./frames.js";
