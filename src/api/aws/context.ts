import type { Service } from "../../core/service.js";
import type { ERRORS } from "../../errors.js";
import type { AwsIdentity } from "./sigv4.js";
import type { Principal } from "../../auth/types.js";
import type { JsonInput } from "./json-protocol.js";
import type { AwsResourceStore } from "../../queue/aws-store.js";
import type { Roles } from "./iam.js";

/** What every AWS operation handler gets: the core, and who is calling from where. */
export interface AwsContext {
  service: Service;
  identity: AwsIdentity;
  /** IAM roles, resource tags (AWS-only metadata). */
  resources: AwsResourceStore;
  roles: Roles;
  /** Who is calling and with which scope (the auth layer's verdict). */
  principal: Principal;
  /** The request's credential-scope region, or the default. */
  region: string;
  accountId: string;
}

/** An awsJson1_1 service: `X-Amz-Target: <targetPrefix>.<Op>`. */
export interface JsonService {
  protocol: "json";
  targetPrefix: string;
  ops: Record<string, (input: JsonInput, ctx: AwsContext) => Promise<unknown>>;
  /** This service's names for kikitori error codes, where they differ from the catalogue's. */
  errorNames?: Partial<Record<keyof typeof ERRORS, string>>;
  /**
   * For services that moved from awsQuery (CloudWatch): each error's awsQuery code, sent in the
   * `x-amzn-query-error` header that SDKs read to report the code scripts know.
   */
  queryErrorCodes?: Record<string, string>;
}

/** An awsQuery service (STS, IAM, SNS): `Action=<Op>` in a form body, XML replies. */
export interface QueryService {
  protocol: "query";
  namespace: string;
  actions: Record<
    string,
    (params: URLSearchParams, ctx: AwsContext) => Promise<Record<string, unknown> | undefined>
  >;
}
