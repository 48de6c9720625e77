// Types of client.mjs: the same as client.js's (client.d.ts).
export * from "./client.js";
export { default } from "./client.js";
