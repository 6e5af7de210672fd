// The tunnel's CommonJS dependencies, loaded with require rather than import. Node 20 imports a
// CommonJS package into ESM about twice as slowly as it requires it (ws ~50 ms instead of ~18,
// @hyperswarm/secret-stream with libsodium ~85 instead of ~55 here), and OpenSSH starts
// `coder ssh --stdio`, which loads both, for every connection. Types still come from the packages.
import { createRequire } from "node:module";
import type NoiseSecretStream from "@hyperswarm/secret-stream";
import type * as Ws from "ws";

const require = createRequire(import.meta.url);
const ws = require("ws") as typeof Ws;

export const WebSocket = ws.WebSocket;
export type WebSocket = Ws.WebSocket;
export const WebSocketServer = ws.WebSocketServer;
export type WebSocketServer = Ws.WebSocketServer;
export type RawData = Ws.RawData;

export const SecretStream = require("@hyperswarm/secret-stream") as typeof NoiseSecretStream;
export type SecretStream = NoiseSecretStream;
