import { XMLBuilder, XMLParser } from "fast-xml-parser";

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

export function parseXml(text: string): Record<string, unknown> {
  return parser.parse(text) as Record<string, unknown>;
}
