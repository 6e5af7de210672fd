// HA: the replica registry, heartbeats and peer latency. coderd wires its "peers" events into
// the relay mesh.
export {
  ReplicaSync,
  CHANNEL_REPLICAS,
  DEFAULT_UPDATE_INTERVAL_MS,
  DEFAULT_LATENCY_THRESHOLD_MS,
  type ReplicaSyncOptions,
  type ReplicaStore,
  type PeerLatency,
} from "./replica-sync.js";
