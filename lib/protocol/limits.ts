// Shared by both ends (and the proxy), so the client never loads server code.

// The largest message either side reads or writes by default.
export const DEFAULT_READ_MAX_BYTES = 16 * 1024 * 1024;
