// coderd: the control plane's HTTP API. `runServer` is what `coder server` runs.
export { createCoderd, type Coderd, REQUEST_ID_HEADER } from "./coderd.js";
export type { CoderdOptions, RelayOptions } from "./context.js";
export { runServer, ConfigError, type RunningServer } from "./server.js";
export type { RouteInfo } from "./httpapi/route.js";
export { AUTH_INVALIDATE_CHANNEL } from "./auth/api-key-cache.js";
export { ROLES, SITE_ROLES, ORG_ROLES, authorize, type Subject, type RbacObject } from "./rbac/index.js";
