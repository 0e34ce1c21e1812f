// The in-guest agent: its container engine (service wiring lives in service.ts).
export * from "./engine/index.ts";
