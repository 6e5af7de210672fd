// deploy/helm/coder without the `helm` binary (not available here): Chart.yaml and values.yaml
// parse and have what operators set, and the templates are rendered by a deliberately tiny
// renderer for exactly the Go-template subset the chart uses (if/else/with/define/include,
// toYaml/nindent/quote/default, .Values/.Release/.Chart paths). Anything else makes it throw,
// so it can never quietly render something different from what helm would: extend it (or use
// helm) when the chart grows.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";

const CHART = resolve(import.meta.dirname, "../../deploy/helm/coder");
const read = (p: string) => readFileSync(join(CHART, p), "utf8");

// ---------------------------------------------------------------- the tiny renderer

type Node =
  | { t: "text"; s: string }
  | { t: "action"; pipe: string }
  | { t: "if" | "with"; pipe: string; then: Node[]; else: Node[] }
  | { t: "define"; name: string; body: Node[] };

function tokenize(src: string): Array<{ t: "text"; s: string } | { t: "tag"; body: string }> {
  const out: Array<{ t: "text"; s: string } | { t: "tag"; body: string }> = [];
  const re = /\{\{(-\s)?\s*([\s\S]*?)\s*(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let text = src.slice(last, m.index);
    if (trimNext) text = text.trimStart();
    if (m[1]) text = text.trimEnd();
    out.push({ t: "text", s: text });
    out.push({ t: "tag", body: m[2]! });
    trimNext = !!m[3];
    last = re.lastIndex;
  }
  let rest = src.slice(last);
  if (trimNext) rest = rest.trimStart();
  out.push({ t: "text", s: rest });
  return out;
}

function parse(src: string): Node[] {
  const tokens = tokenize(src);
  let i = 0;
  const block = (stopAt: string[]): { nodes: Node[]; stop: string } => {
    const nodes: Node[] = [];
    while (i < tokens.length) {
      const tok = tokens[i++]!;
      if (tok.t === "text") {
        if (tok.s) nodes.push({ t: "text", s: tok.s });
        continue;
      }
      const body = tok.body;
      if (body.startsWith("/*")) {
        if (!body.endsWith("*/")) throw new Error(`unterminated comment: {{${body}}}`);
        continue;
      }
      const [word] = body.split(/\s+/, 1);
      if (stopAt.includes(word!)) return { nodes, stop: word! };
      if (word === "if" || word === "with") {
        const then = block(["else", "end"]);
        const otherwise = then.stop === "else" ? block(["end"]).nodes : [];
        nodes.push({ t: word, pipe: body.slice(word.length).trim(), then: then.nodes, else: otherwise });
      } else if (word === "define") {
        const name = /^define\s+"([^"]+)"$/.exec(body)?.[1];
        if (!name) throw new Error(`bad define: {{${body}}}`);
        nodes.push({ t: "define", name, body: block(["end"]).nodes });
      } else if (["else", "end", "range", "template", "block", "tpl"].includes(word!) || body.includes("(") || body.includes(":=")) {
        throw new Error(`the test renderer does not support {{${body}}}`);
      } else {
        nodes.push({ t: "action", pipe: body });
      }
    }
    if (stopAt.length) throw new Error(`missing {{ ${stopAt.join(" / ")} }}`);
    return { nodes, stop: "" };
  };
  return block([]).nodes;
}

interface Ctx {
  root: Record<string, unknown>;
  defines: Map<string, Node[]>;
}

function lookup(base: unknown, path: string, whole: string): unknown {
  let v = base;
  for (const key of path.split(".").filter(Boolean)) {
    if (v === null || typeof v !== "object" || !(key in (v as object))) {
      // Stricter than helm (which renders a missing value as empty): every value the chart
      // uses must have a default in values.yaml.
      throw new Error(`${whole}: no "${key}"`);
    }
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

function show(v: unknown, what: string): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") throw new Error(`{{ ${what} }} prints a map or list`);
  return String(v);
}

const indentLines = (n: number, s: string) =>
  s
    .split("\n")
    .map((l) => " ".repeat(n) + l)
    .join("\n");

const FUNCS: Record<string, (ctx: Ctx, args: unknown[]) => unknown> = {
  include: (ctx, [name, dot]) => {
    const body = ctx.defines.get(name as string);
    if (!body) throw new Error(`include "${String(name)}": no such define`);
    return renderNodes(body, dot, ctx);
  },
  toYaml: (_ctx, [v]) => YAML.stringify(v).replace(/\n$/, ""),
  nindent: (_ctx, [n, s]) => "\n" + indentLines(n as number, show(s, "nindent")),
  indent: (_ctx, [n, s]) => indentLines(n as number, show(s, "indent")),
  quote: (_ctx, [s]) => JSON.stringify(show(s, "quote")),
  default: (_ctx, [d, v]) => (truthy(v) ? v : d),
};

function evalPipe(pipe: string, dot: unknown, ctx: Ctx): unknown {
  let result: unknown;
  let first = true;
  for (const cmd of pipe.split("|").map((c) => c.trim())) {
    const words = cmd.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
    const arg = (w: string): unknown => {
      if (w.startsWith('"')) return JSON.parse(w);
      if (/^-?\d+$/.test(w)) return Number(w);
      if (w === "true" || w === "false") return w === "true";
      if (w === ".") return dot;
      if (w.startsWith(".")) return lookup(dot, w, pipe);
      if (w === "$" || w.startsWith("$.")) return lookup(ctx.root, w.slice(1), pipe);
      throw new Error(`the test renderer does not understand "${w}" in {{ ${pipe} }}`);
    };
    const [head, ...rest] = words;
    if (head === undefined) throw new Error(`empty command in {{ ${pipe} }}`);
    const fn = FUNCS[head];
    if (!fn) {
      if (!first || rest.length) throw new Error(`the test renderer does not know "${head}" in {{ ${pipe} }}`);
      result = arg(head);
    } else {
      const args = rest.map(arg);
      if (!first) args.push(result);
      result = fn(ctx, args);
    }
    first = false;
  }
  return result;
}

function renderNodes(nodes: Node[], dot: unknown, ctx: Ctx): string {
  let out = "";
  for (const n of nodes) {
    if (n.t === "text") out += n.s;
    else if (n.t === "action") out += show(evalPipe(n.pipe, dot, ctx), n.pipe);
    else if (n.t === "define") throw new Error(`define "${n.name}" outside _helpers.tpl`);
    else if (n.t === "if") out += renderNodes(truthy(evalPipe(n.pipe, dot, ctx)) ? n.then : n.else, dot, ctx);
    else {
      const v = evalPipe(n.pipe, dot, ctx);
      out += truthy(v) ? renderNodes(n.then, v, ctx) : renderNodes(n.else, dot, ctx);
    }
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Like `--set`/`-f`: maps merge, everything else replaces. */
function merge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

const chartYaml = YAML.parse(read("Chart.yaml")) as Record<string, unknown>;
const valuesYaml = YAML.parse(read("values.yaml")) as Record<string, unknown>;

/** Renders one template file the way `helm template coder deploy/helm/coder -n coder` would. */
function render(file: string, overrides: Record<string, unknown> = {}, release = { Name: "coder", Namespace: "coder" }): string {
  const defines = new Map<string, Node[]>();
  for (const n of parse(read("templates/_helpers.tpl"))) {
    if (n.t === "define") defines.set(n.name, n.body);
    else if (n.t !== "text" || n.s.trim()) throw new Error("_helpers.tpl: only defines expected");
  }
  const root = {
    Values: merge(valuesYaml, overrides),
    Release: { ...release, Service: "Helm" },
    Chart: { Name: chartYaml.name, Version: chartYaml.version, AppVersion: chartYaml.appVersion },
  };
  return renderNodes(parse(read(`templates/${file}`)), root, { root, defines });
}

function renderObject(file: string, overrides: Record<string, unknown> = {}): any {
  const text = render(file, overrides);
  const docs = YAML.parseAllDocuments(text);
  for (const d of docs) if (d.errors.length) throw new Error(`${file} renders invalid YAML: ${d.errors[0]!.message}\n${text}`);
  const objects = docs.map((d) => d.toJS()).filter((o) => o !== null);
  expect(objects, text).toHaveLength(1);
  return objects[0];
}

type Env = { name: string; value?: string; valueFrom?: any };

// ---------------------------------------------------------------- tests

describe("deploy/helm/coder", () => {
  it("Chart.yaml and values.yaml parse and carry the keys operators set", () => {
    expect(chartYaml).toMatchObject({ apiVersion: "v2", name: "coder", type: "application" });
    expect(chartYaml.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof chartYaml.appVersion).toBe("string");

    const coder = valuesYaml.coder as any;
    expect(coder.replicaCount).toBe(1);
    expect(coder.image).toMatchObject({ repository: expect.any(String), tag: expect.any(String), pullPolicy: "IfNotPresent" });
    expect(coder.httpPort).toBe(8080);
    expect(coder.accessUrl).toBe("");
    expect(coder.pgConnectionUrlSecret).toEqual({ name: expect.any(String), key: expect.any(String) });
    expect(coder.prometheus).toEqual({ enable: false, port: 2112 });
    expect(coder.env).toEqual([]);
    expect(coder.resources).toEqual({});
    expect(coder.service.type).toBe("LoadBalancer");
  });

  it("the Deployment template scales with coder.replicaCount and gives each pod its relay URL", () => {
    const text = read("templates/deployment.yaml");
    expect(text).toContain("replicas: {{ .Values.coder.replicaCount }}");
    expect(text).toMatch(/- name: POD_IP\s+valueFrom:\s+fieldRef:\s+fieldPath: status\.podIP/);
    expect(text).toMatch(/- name: CODER_DERP_SERVER_RELAY_URL\s+value: "http:\/\/\$\(POD_IP\):\{\{ \.Values\.coder\.httpPort \}\}"/);
    expect(text).toContain("path: /api/v2/buildinfo");
  });

  it("renders (defaults): one replica, relay URL per pod, Postgres from the Secret, probes, no stickiness", () => {
    const dep = renderObject("deployment.yaml");
    expect(dep).toMatchObject({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "coder", namespace: "coder" } });
    expect(dep.spec.replicas).toBe(1);
    const pod = dep.spec.template;
    for (const [k, v] of Object.entries(dep.spec.selector.matchLabels)) expect(pod.metadata.labels[k]).toBe(v);

    const [container] = pod.spec.containers;
    expect(container.image).toBe(`ghcr.io/coder-ts/coder:${chartYaml.appVersion}`);
    expect(container.command).toEqual(["coder"]);
    expect(container.args).toEqual(["server"]);
    const env: Env[] = container.env;
    const names = env.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    for (const e of env) expect(typeof e.value === "string" || e.valueFrom !== undefined, e.name).toBe(true);
    // $(POD_IP) expands only from a variable defined before it.
    expect(names.indexOf("POD_IP")).toBeLessThan(names.indexOf("CODER_DERP_SERVER_RELAY_URL"));
    const byName = (n: string) => env.find((e) => e.name === n);
    expect(byName("POD_IP")).toEqual({ name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
    expect(byName("CODER_DERP_SERVER_RELAY_URL")?.value).toBe("http://$(POD_IP):8080");
    expect(byName("CODER_HTTP_ADDRESS")?.value).toBe("0.0.0.0:8080");
    expect(byName("CODER_PG_CONNECTION_URL")).toEqual({
      name: "CODER_PG_CONNECTION_URL",
      valueFrom: { secretKeyRef: { name: "coder-db-url", key: "url" } },
    });
    expect(byName("CODER_ACCESS_URL")).toBeUndefined(); // not set: not invented
    expect(byName("CODER_PROMETHEUS_ENABLE")).toBeUndefined();
    expect(container.ports).toEqual([{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(probe.httpGet).toEqual({ path: "/api/v2/buildinfo", port: "http" });
    }
    expect(container.resources).toBeUndefined();
    expect(pod.spec.serviceAccountName).toBe("coder");
    expect(pod.spec.topologySpreadConstraints[0].labelSelector.matchLabels).toEqual(dep.spec.selector.matchLabels);

    const svc = renderObject("service.yaml");
    expect(svc).toMatchObject({ apiVersion: "v1", kind: "Service", metadata: { name: "coder" } });
    expect(svc.spec.type).toBe("LoadBalancer");
    expect(svc.spec.sessionAffinity).toBe("None");
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
    expect(svc.spec.ports).toEqual([{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }]);

    expect(renderObject("serviceaccount.yaml")).toMatchObject({ kind: "ServiceAccount", metadata: { name: "coder" } });
  });

  it("renders (HA values): replicas, access URL, Prometheus, extra env appended, resources, service type", () => {
    const overrides = {
      coder: {
        replicaCount: 3,
        httpPort: 3000,
        accessUrl: "https://coder.example.com",
        wildcardAccessUrl: "*.apps.example.com",
        image: { tag: "1.2.3" },
        pgConnectionUrlSecret: { name: "pg", key: "dsn" },
        prometheus: { enable: true },
        env: [{ name: "CODER_PROVISIONER_DAEMONS", value: "5" }],
        resources: { requests: { cpu: "1", memory: "1Gi" } },
        service: { type: "ClusterIP", port: 8080 },
        serviceAccount: { create: false, name: "existing" },
      },
    };
    const dep = renderObject("deployment.yaml", overrides);
    expect(dep.spec.replicas).toBe(3);
    const [container] = dep.spec.template.spec.containers;
    expect(container.image).toBe("ghcr.io/coder-ts/coder:1.2.3");
    const env: Env[] = container.env;
    const value = (n: string) => env.find((e) => e.name === n)?.value;
    expect(value("CODER_DERP_SERVER_RELAY_URL")).toBe("http://$(POD_IP):3000");
    expect(value("CODER_HTTP_ADDRESS")).toBe("0.0.0.0:3000");
    expect(value("CODER_ACCESS_URL")).toBe("https://coder.example.com");
    expect(value("CODER_WILDCARD_ACCESS_URL")).toBe("*.apps.example.com");
    expect(value("CODER_PROMETHEUS_ENABLE")).toBe("true");
    expect(value("CODER_PROMETHEUS_ADDRESS")).toBe("0.0.0.0:2112");
    expect(env.at(-1)).toEqual({ name: "CODER_PROVISIONER_DAEMONS", value: "5" });
    expect(env.find((e) => e.name === "CODER_PG_CONNECTION_URL")?.valueFrom).toEqual({ secretKeyRef: { name: "pg", key: "dsn" } });
    expect(container.ports).toContainEqual({ name: "prometheus-http", containerPort: 2112, protocol: "TCP" });
    expect(container.resources).toEqual({ requests: { cpu: "1", memory: "1Gi" } });
    expect(dep.spec.template.spec.serviceAccountName).toBe("existing");
    expect(dep.metadata.labels["app.kubernetes.io/version"]).toBe("1.2.3");

    const svc = renderObject("service.yaml", overrides);
    expect(svc.spec.type).toBe("ClusterIP");
    expect(svc.spec.sessionAffinity).toBe("None");
    expect(svc.spec.ports[0]).toMatchObject({ port: 8080, targetPort: "http" });

    expect(YAML.parseAllDocuments(render("serviceaccount.yaml", overrides)).filter((d) => d.contents !== null)).toHaveLength(0);
    expect(render("NOTES.txt", overrides)).toContain("Access URL: https://coder.example.com");
  });

  it("renders every template and NOTES.txt with the defaults (no value without a default)", () => {
    const files = readdirSync(join(CHART, "templates")).filter((f) => f !== "_helpers.tpl");
    expect(files.sort()).toEqual(["NOTES.txt", "deployment.yaml", "service.yaml", "serviceaccount.yaml"]);
    for (const f of files.filter((f) => f.endsWith(".yaml"))) {
      const obj = renderObject(f);
      expect(obj.metadata.labels["app.kubernetes.io/managed-by"], f).toBe("Helm");
    }
    const notes = render("NOTES.txt");
    expect(notes).toContain('Secret "coder-db-url"');
    expect(notes).toContain("coder.accessUrl is not set");
  });

  it("the test renderer refuses what it does not implement", () => {
    expect(() => parse("{{ range .Values.x }}{{ end }}")).toThrow(/does not support/);
    expect(() => parse("{{ include (printf \"a\") . }}")).toThrow(/does not support/);
    const ctx: Ctx = { root: { Values: { a: 1 } }, defines: new Map() };
    expect(() => evalPipe(".Values.a | upper", ctx.root, ctx)).toThrow(/does not know "upper"/);
    expect(() => evalPipe(".Values.missing", ctx.root, ctx)).toThrow(/no "missing"/);
  });
});
