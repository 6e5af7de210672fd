import type { Response, ValidationError } from "./types.js";

/** A failed API call: the server's status and its message, detail and field validations. */
export class CoderSDKError extends Error {
  readonly status: number;
  readonly response: Response;

  constructor(status: number, response: Response, readonly method = "", readonly url = "") {
    // "Message.: detail" reads badly; the message's own full stop gives way to the colon.
    super(response.detail ? `${response.message.replace(/\.$/, "")}: ${response.detail}` : response.message);
    this.name = "CoderSDKError";
    this.status = status;
    this.response = response;
  }

  get validations(): ValidationError[] {
    return this.response.validations ?? [];
  }

  /** One line for a terminal: message, detail and each invalid field. */
  friendly(): string {
    const fields = this.validations.map((v) => `${v.field}: ${v.detail}`).join("; ");
    return fields ? `${this.message} (${fields})` : this.message;
  }
}

export function isCoderSDKError(err: unknown, status?: number): err is CoderSDKError {
  return err instanceof CoderSDKError && (status === undefined || err.status === status);
}
