// Provisioner drivers: what turns a template and a transition into infrastructure.
export type { ApplyRequest, ApplyResult, Driver, DriverLog, ParseResult } from "./types.js";
export { TemplateError } from "./types.js";
export { LocalDriver, type LocalDriverOptions } from "./local/driver.js";
export { MANIFEST_FILE } from "./local/manifest.js";
export { EXAMPLE_TEMPLATE } from "./local/example.js";
