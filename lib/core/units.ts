const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

// A size as runc and podman read it (go-units RAMInBytes): bytes, or a number
// with k, m, g or t (binary multiples; "mb", "mib", "Gi" alike). undefined
// when it is not one.
export function parseSize(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b|i)?$/i.exec(value.trim());
  return m ? Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!) : undefined;
}
