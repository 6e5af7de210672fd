import { CoderSDKError } from "../codersdk/index.js";

/** One line for any failure: the API's message, detail and fields, or the error's message. */
export function describeError(err: unknown): string {
  if (err instanceof CoderSDKError) return err.friendly();
  if (err instanceof Error) return err.message;
  return String(err);
}
