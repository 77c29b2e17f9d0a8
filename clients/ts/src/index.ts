export * from "./client.js";
export type * from "./frames.js";
