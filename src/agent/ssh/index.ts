// The SSH server the workspace agent offers to peers over its tunnel's streams.
export { AgentSshServer, type SshServerOptions } from "./server.js";
export { generateHostKey, hostKeyFingerprint, hostPublicKey, loadOrCreateHostKey } from "./host-key.js";
