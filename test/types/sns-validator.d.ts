// sns-validator (AWS's SNS message validator) ships no types; this is the part the tests use.
declare module "sns-validator" {
  export default class MessageValidator {
    constructor(hostPattern?: RegExp, encoding?: string);
    validate(
      message: string | Record<string, unknown>,
      cb: (err: Error | null, message?: Record<string, unknown>) => void,
    ): void;
  }
}
