import pkg from "../../package.json" with { type: "json" };

// HUSK_COMMIT is replaced by `npm run build`; a source run reports "dev".
declare const HUSK_COMMIT: string | undefined;

export const VERSION: string = pkg.version;
export const COMMIT: string = typeof HUSK_COMMIT === "string" ? HUSK_COMMIT : "dev";
export const OCI_SPEC_VERSION = "1.2.0";
