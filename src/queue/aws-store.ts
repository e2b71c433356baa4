/**
 * AWS-only metadata the core does not reason about: IAM roles, resource tags (by ARN), CloudWatch alarms.
 * Each record is an AWS-shaped JSON body under a kind and a name; both backends implement this contract
 * (test/queue/aws-contract.ts).
 */
export type AwsResourceKind = "iam-role" | "tags" | "cw-alarm";

export interface AwsResource {
  kind: AwsResourceKind;
  name: string;
  /** JSON text. */
  body: string;
  /** Epoch ms of the last write. */
  updatedAt: number;
}

export interface AwsResourceStore {
  /** Inserts or replaces. */
  put(kind: AwsResourceKind, name: string, body: string, now: number): Promise<void>;
  /** Inserts only; false (nothing written) when the name is taken. */
  create(kind: AwsResourceKind, name: string, body: string, now: number): Promise<boolean>;
  get(kind: AwsResourceKind, name: string): Promise<AwsResource | undefined>;
  /** Ordered by name; `prefix` keeps names that start with it. */
  list(kind: AwsResourceKind, prefix?: string): Promise<AwsResource[]>;
  /** False when there was none. */
  delete(kind: AwsResourceKind, name: string): Promise<boolean>;
}
