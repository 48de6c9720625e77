// Types of client.mjs: the same as client.js's (client.d.ts).
import { DjangoWebSocket } from "./client.js";

export * from "./client.js";
export default DjangoWebSocket;
