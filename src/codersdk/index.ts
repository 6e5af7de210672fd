export { Client, SESSION_TOKEN_COOKIE, SESSION_TOKEN_HEADER, type UsersQuery } from "./client.js";
export { CoderSDKError, isCoderSDKError } from "./errors.js";
export * from "./deployment.js";
export * from "./duration.js";
export type * from "./types.js";
