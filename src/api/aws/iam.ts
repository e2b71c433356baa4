import { AwsApiError } from "./json-protocol.js";
import type { QueryService } from "./context.js";

/**
 * IAM GetRole for the configured execution roles: notebooks look up their role's ARN before CreateModel.
 * kikitori enforces no IAM policy; the role only has to exist by name.
 */
export function iamService(roles: readonly string[]): QueryService {
  return {
    protocol: "query",
    namespace: "https://iam.amazonaws.com/doc/2010-05-08/",
    actions: {
      GetRole: async (params, ctx) => {
        const name = params.get("RoleName");
        if (!name) throw new AwsApiError("ValidationError", 400, "GetRole: RoleName is required");
        if (!roles.includes(name))
          throw new AwsApiError("NoSuchEntity", 404, `The role with name ${name} cannot be found.`);
        return {
          Role: {
            Path: "/",
            RoleName: name,
            RoleId: `AROA${Buffer.from(name).toString("hex").slice(0, 17).toUpperCase()}`,
            Arn: `arn:aws:iam::${ctx.accountId}:role/${name}`,
            CreateDate: new Date(0).toISOString(),
            AssumeRolePolicyDocument: encodeURIComponent(
              JSON.stringify({
                Version: "2012-10-17",
                Statement: [
                  {
                    Effect: "Allow",
                    Principal: { Service: "sagemaker.amazonaws.com" },
                    Action: "sts:AssumeRole",
                  },
                ],
              }),
            ),
            MaxSessionDuration: 3600,
          },
        };
      },
    },
  };
}
