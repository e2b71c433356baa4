import { XMLBuilder, XMLParser } from "fast-xml-parser";
import { CodedError } from "../../errors.js";

const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  suppressEmptyNode: false,
});

/** An S3 response document: `<?xml ...?><Root xmlns="...">...</Root>`. Undefined fields are left out. */
export function s3Xml(root: string, body: Record<string, unknown>, namespace = true): string {
  const doc = { [root]: namespace ? { "@_xmlns": S3_NS, ...body } : body };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(doc) as string}`;
}

/** Elements that may repeat are always arrays, so one `<Part>` reads like many. */
const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  isArray: (name) => name === "Part" || name === "Object",
});

/** A request document that is not XML we accept: S3's MalformedXML, a 400. */
export class MalformedXml extends CodedError {
  constructor(why: string) {
    super("MalformedXML", 400, `The XML you provided was not well-formed or did not validate: ${why}`);
  }
}

/**
 * Parses a request document. Hostile input is a 400, never a 500: DTDs and entity declarations are
 * refused outright (so only XML's five predefined entities are ever expanded), and the parser's own limits (nesting depth, reserved names such as
 * `__proto__`) surface as MalformedXML.
 */
export function parseXml(text: string): Record<string, unknown> {
  if (/<!DOCTYPE|<!ENTITY/i.test(text))
    throw new MalformedXml("DOCTYPE and ENTITY declarations are not accepted");
  let doc: unknown;
  try {
    doc = parser.parse(text);
  } catch (e) {
    throw new MalformedXml((e as Error).message.slice(0, 200));
  }
  if (typeof doc !== "object" || doc === null) throw new MalformedXml("not an XML document");
  return doc as Record<string, unknown>;
}
