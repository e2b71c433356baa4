export type * from "./types.js";
export * from "./errors.js";
export { checkBucketName, checkKey, parseS3Url, parseS3Prefix } from "./validate.js";
export { FsObjectStore, type FsObjectStoreOptions } from "./fs.js";
