import { createHash } from "node:crypto";
import type { AwsResourceStore } from "../../queue/aws-store.js";
import { AwsApiError } from "./json-protocol.js";
import type { AwsContext, QueryService } from "./context.js";

/**
 * IAM roles as resources, for the notebooks that look up (or create) their execution role before
 * CreateModel: CreateRole, GetRole, ListRoles, DeleteRole, and policies attached or put inline, listed as
 * given. kikitori enforces no IAM policy: a role only has to exist by name (CreateModel checks that, as
 * SageMaker does). The configured built-in roles always exist and cannot be deleted.
 */

interface Role {
  Path: string;
  RoleName: string;
  RoleId: string;
  Arn: string;
  CreateDate: string;
  AssumeRolePolicyDocument: string;
  Description?: string;
  MaxSessionDuration: number;
  Tags: { Key: string; Value: string }[];
  /** Managed policies attached (AttachRolePolicy). */
  AttachedPolicies: { PolicyName: string; PolicyArn: string }[];
  /** Inline policies (PutRolePolicy): name → URL-encoded document, as IAM returns it. */
  InlinePolicies: Record<string, string>;
}

const SAGEMAKER_TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    { Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" },
  ],
});

const noSuchRole = (name: string) =>
  new AwsApiError("NoSuchEntity", 404, `The role with name ${name} cannot be found.`);
const invalid = (message: string) => new AwsApiError("ValidationError", 400, message);

function required(p: URLSearchParams, name: string): string {
  const v = p.get(name);
  if (!v)
    throw invalid(
      `1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`,
    );
  return v;
}

/** A policy document must be JSON (IAM takes it URL-encoded or plain). */
function policyDocument(p: URLSearchParams, name: string): string {
  const doc = required(p, name);
  try {
    JSON.parse(doc);
  } catch {
    throw new AwsApiError("MalformedPolicyDocument", 400, `${name} is not valid JSON`);
  }
  return encodeURIComponent(doc);
}

/** `Tags.member.N.Key` / `.Value`, as awsQuery lists arrive. */
function tags(p: URLSearchParams): { Key: string; Value: string }[] {
  const out = [];
  for (let i = 1; p.has(`Tags.member.${i}.Key`); i++)
    out.push({ Key: p.get(`Tags.member.${i}.Key`)!, Value: p.get(`Tags.member.${i}.Value`) ?? "" });
  return out;
}

/** The role name in an IAM role ARN (`arn:aws:iam::<account>:role/<path/>name`). */
export function roleNameOf(arn: string): string | undefined {
  const m = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:.*\/)?([\w+=,.@-]{1,64})$/.exec(arn);
  return m?.[1];
}

const roleView = (r: Role) => {
  const { Tags, AttachedPolicies: _a, InlinePolicies: _i, ...rest } = r;
  return { ...rest, ...(Tags.length ? { Tags: { member: Tags } } : {}) };
};

export class Roles {
  constructor(
    private readonly store: AwsResourceStore,
    private readonly builtin: readonly string[],
  ) {}

  private make(ctx: Pick<AwsContext, "accountId">, name: string, path = "/", at = new Date(0)): Role {
    return {
      Path: path,
      RoleName: name,
      RoleId: `AROA${createHash("sha256").update(name).digest("hex").slice(0, 17).toUpperCase()}`,
      Arn: `arn:aws:iam::${ctx.accountId}:role${path}${name}`,
      CreateDate: at.toISOString(),
      AssumeRolePolicyDocument: encodeURIComponent(SAGEMAKER_TRUST),
      MaxSessionDuration: 3600,
      Tags: [],
      AttachedPolicies: [],
      InlinePolicies: {},
    };
  }

  async get(ctx: Pick<AwsContext, "accountId">, name: string): Promise<Role | undefined> {
    const r = await this.store.get("iam-role", name);
    if (r) return JSON.parse(r.body) as Role;
    return this.builtin.includes(name) ? this.make(ctx, name) : undefined;
  }

  async list(ctx: Pick<AwsContext, "accountId">): Promise<Role[]> {
    const stored = (await this.store.list("iam-role")).map((r) => JSON.parse(r.body) as Role);
    const names = new Set(stored.map((r) => r.RoleName));
    const all = [...stored, ...this.builtin.filter((n) => !names.has(n)).map((n) => this.make(ctx, n))];
    return all.sort((a, b) => a.RoleName.localeCompare(b.RoleName));
  }

  private async must(ctx: AwsContext, name: string): Promise<Role> {
    const r = await this.get(ctx, name);
    if (!r) throw noSuchRole(name);
    return r;
  }

  private save = (r: Role) => this.store.put("iam-role", r.RoleName, JSON.stringify(r), Date.now());

  service(): QueryService {
    const actions: QueryService["actions"] = {
      CreateRole: async (p, ctx) => {
        const name = required(p, "RoleName");
        if (!/^[\w+=,.@-]{1,64}$/.test(name))
          throw invalid(`RoleName ${name}: 1 to 64 letters, digits and +=,.@_-`);
        const path = p.get("Path") ?? "/";
        if (!/^\/([\x21-\x7e]*\/)?$/.test(path)) throw invalid(`Path ${path} must begin and end with /`);
        const role: Role = {
          ...this.make(ctx, name, path, new Date()),
          AssumeRolePolicyDocument: policyDocument(p, "AssumeRolePolicyDocument"),
          ...(p.get("Description") ? { Description: p.get("Description")! } : {}),
          MaxSessionDuration: Number(p.get("MaxSessionDuration") ?? 3600),
          Tags: tags(p),
        };
        if (
          this.builtin.includes(name) ||
          !(await this.store.create("iam-role", name, JSON.stringify(role), Date.now()))
        )
          throw new AwsApiError("EntityAlreadyExists", 409, `Role with name ${name} already exists.`);
        return { Role: roleView(role) };
      },
      GetRole: async (p, ctx) => ({ Role: roleView(await this.must(ctx, required(p, "RoleName"))) }),
      ListRoles: async (p, ctx) => {
        const prefix = p.get("PathPrefix") ?? "/";
        const roles = (await this.list(ctx)).filter((r) => r.Path.startsWith(prefix));
        return { Roles: { member: roles.map(roleView) }, IsTruncated: false };
      },
      DeleteRole: async (p, ctx) => {
        const name = required(p, "RoleName");
        const role = await this.must(ctx, name);
        if (this.builtin.includes(name))
          throw new AwsApiError(
            "UnmodifiableEntity",
            400,
            `Cannot perform the operation on the built-in role ${name}.`,
          );
        if (role.AttachedPolicies.length || Object.keys(role.InlinePolicies).length)
          throw new AwsApiError(
            "DeleteConflict",
            409,
            "Cannot delete entity, must detach all policies first.",
          );
        await this.store.delete("iam-role", name);
        return undefined;
      },
      AttachRolePolicy: async (p, ctx) => {
        const role = await this.stored(ctx, required(p, "RoleName"));
        const arn = required(p, "PolicyArn");
        if (!/^arn:aws[a-z-]*:iam::(aws|\d{12}):policy\/.+/.test(arn))
          throw invalid(`ARN ${arn} is not valid.`);
        if (!role.AttachedPolicies.some((a) => a.PolicyArn === arn))
          role.AttachedPolicies.push({ PolicyName: arn.replace(/^.*\//, ""), PolicyArn: arn });
        await this.save(role);
        return undefined;
      },
      DetachRolePolicy: async (p, ctx) => {
        const role = await this.stored(ctx, required(p, "RoleName"));
        const arn = required(p, "PolicyArn");
        if (!role.AttachedPolicies.some((a) => a.PolicyArn === arn))
          throw new AwsApiError("NoSuchEntity", 404, `Policy ${arn} was not found.`);
        role.AttachedPolicies = role.AttachedPolicies.filter((a) => a.PolicyArn !== arn);
        await this.save(role);
        return undefined;
      },
      ListAttachedRolePolicies: async (p, ctx) => {
        const role = await this.must(ctx, required(p, "RoleName"));
        return { AttachedPolicies: { member: role.AttachedPolicies }, IsTruncated: false };
      },
      PutRolePolicy: async (p, ctx) => {
        const role = await this.stored(ctx, required(p, "RoleName"));
        role.InlinePolicies[required(p, "PolicyName")] = policyDocument(p, "PolicyDocument");
        await this.save(role);
        return undefined;
      },
      GetRolePolicy: async (p, ctx) => {
        const role = await this.must(ctx, required(p, "RoleName"));
        const name = required(p, "PolicyName");
        const doc = role.InlinePolicies[name];
        if (doc === undefined)
          throw new AwsApiError("NoSuchEntity", 404, `The role policy with name ${name} cannot be found.`);
        return { RoleName: role.RoleName, PolicyName: name, PolicyDocument: doc };
      },
      DeleteRolePolicy: async (p, ctx) => {
        const role = await this.stored(ctx, required(p, "RoleName"));
        const name = required(p, "PolicyName");
        if (role.InlinePolicies[name] === undefined)
          throw new AwsApiError("NoSuchEntity", 404, `The role policy with name ${name} cannot be found.`);
        delete role.InlinePolicies[name];
        await this.save(role);
        return undefined;
      },
      ListRolePolicies: async (p, ctx) => {
        const role = await this.must(ctx, required(p, "RoleName"));
        return { PolicyNames: { member: Object.keys(role.InlinePolicies).sort() }, IsTruncated: false };
      },
    };
    return { protocol: "query", namespace: "https://iam.amazonaws.com/doc/2010-05-08/", actions };
  }

  /** A role that may be changed: one created through CreateRole (a built-in one is not stored). */
  private async stored(ctx: AwsContext, name: string): Promise<Role> {
    const role = await this.must(ctx, name);
    if (this.builtin.includes(name) && !(await this.store.get("iam-role", name)))
      throw new AwsApiError(
        "UnmodifiableEntity",
        400,
        `Cannot perform the operation on the built-in role ${name}.`,
      );
    return role;
  }
}
