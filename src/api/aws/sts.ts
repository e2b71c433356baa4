import type { QueryService } from "./context.js";

/** STS GetCallerIdentity: the configured account, and a user named after the caller's access key. */
export function stsService(): QueryService {
  return {
    protocol: "query",
    namespace: "https://sts.amazonaws.com/doc/2011-06-15/",
    actions: {
      GetCallerIdentity: async (_params, ctx) => ({
        UserId: ctx.identity.accessKeyId,
        Account: ctx.accountId,
        Arn: `arn:aws:iam::${ctx.accountId}:user/${ctx.identity.accessKeyId}`,
      }),
    },
  };
}
