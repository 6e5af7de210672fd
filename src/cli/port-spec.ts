// `coder port-forward --tcp` specs: "[bind:]local:remote", a single port for both ends ("[bind:]port"), port
// ranges of equal length ("8000-8005:9000-9005"), bracketed IPv6 binds ("[::1]:8080:80"), and
// several specs in one value separated by commas. Parsed before anything is dialed, so a typo
// fails at once with the offending value named.
import { isIP } from "node:net";
import { CliError } from "./errors.js";

export interface PortForward {
  /** Local address to listen on (default 127.0.0.1). */
  bind: string;
  localPort: number;
  /** Port on 127.0.0.1 inside the workspace. */
  remotePort: number;
}

/** At most this many ports in one range: a typo like 1-65535 should not open 65535 listeners. */
export const MAX_RANGE = 1000;

const USAGE = "use [bind:]local:remote, e.g. 8080:80, 127.0.0.1:8080:80 or 8000-8005:9000-9005";

class SpecError extends Error {}

function parsePorts(text: string, which: string): number[] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw new SpecError(`${which} port "${text}" is not a port or a range of ports`);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  for (const p of [first, last]) if (p < 1 || p > 65_535) throw new SpecError(`${which} port ${p} is out of range (1-65535)`);
  if (last < first) throw new SpecError(`${which} range ${text} ends before it starts`);
  if (last - first + 1 > MAX_RANGE) throw new SpecError(`${which} range ${text} has ${last - first + 1} ports (at most ${MAX_RANGE})`);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

function parseOne(spec: string): PortForward[] {
  let bind = "127.0.0.1";
  let rest = spec;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0 || rest[close + 1] !== ":") throw new SpecError("a bracketed address must look like [::1]:local:remote");
    bind = rest.slice(1, close);
    if (isIP(bind) !== 6) throw new SpecError(`"${bind}" is not an IPv6 address`);
    rest = rest.slice(close + 2);
    if (rest.split(":").length > 2) throw new SpecError("after the address, give local:remote or a port");
  } else {
    const parts = rest.split(":");
    if (parts.length > 3) throw new SpecError("too many colons (put an IPv6 address in brackets: [::1]:8080:80)");
    const isAddress = (x: string) => x === "localhost" || isIP(x) !== 0;
    // "bind:local:remote", or "bind:port" (an address is never a port, so that is unambiguous).
    if (parts.length === 3 || (parts.length === 2 && isAddress(parts[0]!))) {
      bind = parts[0]!;
      if (!isAddress(bind)) throw new SpecError(`"${bind}" is not an IP address to listen on`);
      rest = parts.slice(1).join(":");
    }
  }
  const [localText, remoteText = localText] = rest.split(":");
  const local = parsePorts(localText!, "local");
  const remote = parsePorts(remoteText!, "remote");
  if (local.length !== remote.length) {
    throw new SpecError(`the local side has ${local.length} port${local.length === 1 ? "" : "s"} but the remote side has ${remote.length}`);
  }
  return local.map((localPort, i) => ({ bind, localPort, remotePort: remote[i]! }));
}

/** Every forward the values name, in order; throws a CliError naming the flag and the bad value. */
export function parsePortForwards(values: string[], flag = "--tcp"): PortForward[] {
  const out: PortForward[] = [];
  const seen = new Map<string, string>();
  for (const value of values) {
    for (const raw of value.split(",")) {
      const spec = raw.trim();
      if (!spec) throw new CliError(`${flag} "${value}": empty spec; ${USAGE}`);
      let forwards: PortForward[];
      try {
        forwards = parseOne(spec);
      } catch (err) {
        if (err instanceof SpecError) throw new CliError(`${flag} "${spec}": ${err.message}; ${USAGE}`);
        throw err;
      }
      for (const f of forwards) {
        const key = listenAddress(f);
        const earlier = seen.get(key);
        if (earlier !== undefined) throw new CliError(`${flag} "${spec}": ${key} is already forwarded by ${flag} "${earlier}"`);
        seen.set(key, spec);
        out.push(f);
      }
    }
  }
  return out;
}

/** "127.0.0.1:8080", "[::1]:8080". */
export function listenAddress(f: Pick<PortForward, "bind" | "localPort">): string {
  return `${isIP(f.bind) === 6 ? `[${f.bind}]` : f.bind}:${f.localPort}`;
}
