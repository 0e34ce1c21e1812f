import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { parse } from "yaml";

// cloud-hypervisor's published OpenAPI document, loaded as-is and compiled
// with ajv: every request body husk sends is checked against it, by the tests
// and by the test double VMM. No schema is copied by hand.

export const SPEC_PATH = join(import.meta.dirname, "..", "..", "..", "shared", "reference", "cloud-hypervisor.yaml");

interface Operation {
  requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> };
  responses?: Record<string, unknown>;
}
interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
}

// OpenAPI integer formats; ajv knows only JSON Schema's, so range-check these.
const INT_FORMATS: Record<string, [number, number]> = {
  int8: [-(2 ** 7), 2 ** 7 - 1],
  int16: [-(2 ** 15), 2 ** 15 - 1],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint8: [0, 2 ** 8 - 1],
  uint16: [0, 2 ** 16 - 1],
  uint32: [0, 2 ** 32 - 1],
};

// Strict mode closes every object schema that lists its properties, so a
// misspelt field fails here instead of being silently ignored by the VMM.
function closeObjects(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closeObjects);
  if (typeof node !== "object" || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(node)) out[k] = closeObjects(val);
  if (out.type === "object" && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

export interface ChSpec {
  doc: OpenApiDoc;
  // Errors (empty when valid) of `body` against components/schemas/<name>.
  check(schemaName: string, body: unknown): string[];
  // The request body schema name of `PUT /<endpoint>` ("vm.create" -> "VmConfig").
  requestSchema(endpoint: string, method?: string): string | undefined;
  // Whether the spec lists `status` among the answers of that operation.
  lists(endpoint: string, method: string, status: number): boolean;
}

export function loadChSpec(opts: { strict?: boolean } = {}): ChSpec {
  const doc = parse(readFileSync(SPEC_PATH, "utf8")) as OpenApiDoc;
  const ajv = new Ajv({ allErrors: true, strict: true });
  ajv.addKeyword("components"); // the spec's root section holding the schemas
  for (const [name, [min, max]] of Object.entries(INT_FORMATS))
    ajv.addFormat(name, { type: "number", validate: (n: number) => Number.isInteger(n) && n >= min && n <= max });
  const components = opts.strict === false ? doc.components : closeObjects(doc.components);
  ajv.addSchema({ $id: "ch", components });
  const validators = new Map<string, ValidateFunction>();

  const validatorFor = (name: string): ValidateFunction => {
    if (!(name in doc.components.schemas)) throw new Error(`no schema ${name} in ${SPEC_PATH}`);
    let fn = validators.get(name);
    if (!fn) {
      fn = ajv.compile({ $ref: `ch#/components/schemas/${name}` });
      validators.set(name, fn);
    }
    return fn;
  };
  const operation = (endpoint: string, method: string): Operation | undefined =>
    doc.paths[`/${endpoint}`]?.[method.toLowerCase()];

  return {
    doc,
    check(name, body) {
      const fn = validatorFor(name);
      if (fn(body)) return [];
      return (fn.errors ?? []).map((e) => `${name}${e.instancePath || ""} ${e.message}${extra(e.params)}`);
    },
    requestSchema(endpoint, method = "put") {
      const ref = operation(endpoint, method)?.requestBody?.content?.["application/json"]?.schema?.$ref;
      return ref?.split("/").pop();
    },
    lists(endpoint, method, status) {
      return String(status) in (operation(endpoint, method)?.responses ?? {});
    },
  };
}

const extra = (params: Record<string, unknown>): string =>
  "additionalProperty" in params ? ` (${String(params.additionalProperty)})` : "";
