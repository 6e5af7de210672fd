// The slice of a pino logger the services use, so tests and callers can pass anything shaped so.
export interface ServiceLogger {
  warn(...args: unknown[]): void;
  debug?(...args: unknown[]): void;
}
