import { CodedError } from "../errors.js";

/** Store errors carry an S3-style code so front doors can map them (REST status, S3 XML error, ...). */
export class StoreError extends CodedError {}

export const noSuchBucket = (bucket: string) =>
  new StoreError("NoSuchBucket", 404, `The specified bucket does not exist: ${bucket}`);
export const noSuchKey = (bucket: string, key: string) =>
  new StoreError("NoSuchKey", 404, `The specified key does not exist: s3://${bucket}/${key}`);
export const bucketNotEmpty = (bucket: string) =>
  new StoreError("BucketNotEmpty", 409, `The bucket you tried to delete is not empty: ${bucket}`);
export const bucketExists = (bucket: string) =>
  new StoreError("BucketAlreadyOwnedByYou", 409, `The bucket already exists: ${bucket}`);
export const invalidBucketName = (bucket: string, why: string) =>
  new StoreError("InvalidBucketName", 400, `Invalid bucket name "${bucket}": ${why}`);
export const invalidKey = (key: string, why: string) =>
  new StoreError("InvalidArgument", 400, `Invalid object key "${key.slice(0, 200)}": ${why}`);
export const keyTooLong = (key: string) =>
  new StoreError("KeyTooLongError", 400, `Object key is longer than 1024 bytes: "${key.slice(0, 200)}..."`);
export const noSuchUpload = (uploadId: string) =>
  new StoreError("NoSuchUpload", 404, `The specified multipart upload does not exist: ${uploadId}`);
export const invalidPart = (why: string) => new StoreError("InvalidPart", 400, why);
export const invalidPartOrder = (why: string) => new StoreError("InvalidPartOrder", 400, why);
export const entityTooSmall = (partNumber: number, size: number, min: number) =>
  new StoreError(
    "EntityTooSmall",
    400,
    `Part ${partNumber} is ${size} bytes; every part but the last must be at least ${min} bytes`,
  );
export const invalidArgument = (why: string) => new StoreError("InvalidArgument", 400, why);
export const invalidRange = (why: string) => new StoreError("InvalidRange", 416, why);
export const entityTooLarge = (limit: number) =>
  new StoreError(
    "EntityTooLarge",
    413,
    `Your proposed upload exceeds the maximum allowed size of ${limit} bytes`,
  );
