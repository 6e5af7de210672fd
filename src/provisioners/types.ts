// The driver interface: what a provisioner daemon asks of the thing that changes infrastructure.
import type { LogLevel, ParameterSpec, ResourceSpec, Transition, WorkspaceBuildInput } from "../provisionerd/proto.js";

export type DriverLog = (level: LogLevel, output: string, stage?: string) => void;

export interface ParseResult {
  parameters: ParameterSpec[];
  readme: string;
}

export interface ApplyRequest {
  /** The extracted template. */
  templateDir: string;
  build: WorkspaceBuildInput;
}

export interface ApplyResult {
  /** Opaque to coderd; handed to the next build of the workspace. */
  state: string | null;
  resources: ResourceSpec[];
}

export interface Driver {
  readonly name: string;
  /** Reads the template: its parameters (validated) and readme. */
  parse(templateDir: string, log: DriverLog): Promise<ParseResult>;
  /** What a transition would produce, without changing anything (template import preview). */
  plan(templateDir: string, transition: Transition, log: DriverLog): Promise<ResourceSpec[]>;
  /** Makes the transition happen. The signal aborts it (the build then fails). */
  apply(req: ApplyRequest, signal: AbortSignal, log: DriverLog): Promise<ApplyResult>;
}

/** A template the driver cannot use: the message names the file and the field. */
export class TemplateError extends Error {}
