import type { ScalingStore } from "../autoscale/types.js";
import type { NotifyStore } from "../notify/store.js";
import type { AwsResourceStore } from "./aws-store.js";
import type { KeyStore } from "./key-store.js";
import type { Coordinator, StateStore } from "./types.js";

/** Every store of one process on one database (SQLite or PostgreSQL), and how to close them. */
export interface DatabaseStores {
  state: StateStore;
  notify: NotifyStore;
  scaling: ScalingStore;
  /** AWS-only metadata: IAM roles, tags, CloudWatch alarms. */
  aws: AwsResourceStore;
  /** API keys and browser sessions (src/auth). */
  keys: KeyStore;
  coordinator: Coordinator;
  close(): Promise<void>;
}
