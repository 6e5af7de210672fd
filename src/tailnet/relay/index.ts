// The embedded relay: server, client with pair streams, and the wire format.
export { RelayServer, type RelayServerOptions, type RelayStats } from "./server.js";
export { RelayClient, type RelayClientOptions, relayWebSocketUrl } from "./client.js";
export { RelayConn } from "./pair.js";
export {
  MESH_KEY_HEADER,
  MESH_PATH,
  meshKeyMatches,
  meshWebSocketUrl,
  RelayMesh,
  type RelayMeshOptions,
  type RelayMeshPeerStatus,
  type RelayMeshStats,
} from "./mesh.js";
export type { RelayLogger } from "./logger.js";
export {
  CloseCode as RelayCloseCode,
  FrameError,
  FrameType,
  MAX_BODY as RELAY_MAX_BODY,
  MAX_FRAME as RELAY_MAX_FRAME,
  MAX_MESH_FRAME as RELAY_MAX_MESH_FRAME,
  meshWebSocketServerOptions,
  relayWebSocketServerOptions,
} from "./frames.js";
