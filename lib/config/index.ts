export {
  loadSettings,
  DEFAULTS,
  DEFAULT_CONFIG_PATH,
  ENV_KEYS,
  CHILD_SETTINGS_ENV,
  childEnv,
  type SettingsOverrides,
} from "./load.ts";
export { HYPERVISORS, PERSIST_STORES, LOG_FORMATS, type Settings } from "./schema.ts";
