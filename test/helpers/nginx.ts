// Real nginx (Debian's /usr/sbin/nginx) in front of test upstreams, running the SHIPPED site
// configuration deploy/nginx/coder.conf: the helper only swaps the upstream `server` lines for
// the test's addresses and moves every `listen` to a free loopback port, so what the tests check
// is the file operators install. The work is done in ./nginx-core.js (no Vitest there, so the
// benchmarks use it too); this module ties each nginx to the test that started it.
import { onTestFinished } from "vitest";
import { launchNginx, type Nginx, type NginxOptions } from "./nginx-core.js";

export {
  checkConfig,
  DEPLOY_NGINX_DIR,
  listenPorts,
  NGINX_BIN,
  renderSite,
  SHIPPED_CONF,
  SHIPPED_TLS_CONF,
  type Nginx,
  type NginxOptions,
  type RenderInput,
} from "./nginx-core.js";

/**
 * Starts real nginx running the site file (default deploy/nginx/coder.conf) with its upstream
 * servers replaced by `upstreams` ("127.0.0.1:port") and its listens moved to free loopback
 * ports. Call it inside a test: it stops nginx (master and workers) when the test finishes.
 */
export function startNginx(upstreams: string[], opts: NginxOptions = {}): Promise<Nginx> {
  return launchNginx(upstreams, { ...opts, onSpawn: (stop) => onTestFinished(stop) });
}
