// The slice of a pino logger the relay uses, so callers pass theirs (or nothing).
export interface RelayLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const noop = (): void => {};
export const silentLogger: RelayLogger = { debug: noop, info: noop, warn: noop };
