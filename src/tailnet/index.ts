// Peer networking: identities, the coordination protocol, the relay, encrypted sessions.
export * from "./coordination/protocol.js";
export { embeddedRegion, relayNodeUrl, type RelayMap, type RelayNode, type RelayRegion } from "./relay-map.js";
export { CoordinationClient, type CoordinationClientOptions } from "./coordination/client.js";
export { pickHomeRegion } from "./home-region.js";
export { decodeKey, encodeKey, generateKeyPair, type KeyPair } from "./keys.js";
export {
  MESH_KEY_HEADER,
  MESH_PATH,
  meshKeyMatches,
  meshWebSocketServerOptions,
  meshWebSocketUrl,
  RelayClient,
  RelayMesh,
  RelayServer,
  type RelayClientOptions,
  type RelayMeshOptions,
  type RelayMeshPeerStatus,
  type RelayMeshStats,
  type RelayServerOptions,
  type RelayStats,
} from "./relay/index.js";
export { ResumableStreams, Session, type SessionStream } from "./session/index.js";
export { dialUdx, UdxListener, type DialUdxOptions, type UdxListenerOptions, type UdxStream } from "./udx/index.js";
export { AgentConn, type AgentConnOptions, type AgentPath, type Coordination, type DirectTransport } from "./agent-conn.js";
export { runSpeedtest, sendFor, type SpeedtestOptions, type SpeedtestRequest, type SpeedtestResult } from "./speedtest-client.js";
