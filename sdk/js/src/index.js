// The slashd plugin SDK, bound to the real host imports. Only a component built by
// `slashd-plugin build` (componentize-js) can load this module: `slashd:plugin/…` is
// resolved by the component model, not by Node. Tests use `slashd-plugin/core` with fakes.

import { log as logImport } from "slashd:plugin/log@0.2.0";
import * as kvImport from "slashd:plugin/kv@0.2.0";
import * as configImport from "slashd:plugin/config@0.2.0";
import * as secretsImport from "slashd:plugin/secrets@0.2.0";
import * as progressImport from "slashd:plugin/progress@0.2.0";
import * as sessionsImport from "slashd:plugin/sessions@0.2.0";
import * as statsImport from "slashd:plugin/stats@0.2.0";
import * as commandsImport from "slashd:plugin/commands@0.2.0";
import * as jobsImport from "slashd:plugin/jobs@0.2.0";

import { createSdk } from "./core.js";

const sdk = createSdk({
  log: { log: logImport },
  kv: kvImport,
  config: configImport,
  secrets: secretsImport,
  progress: progressImport,
  sessions: sessionsImport,
  stats: statsImport,
  commands: commandsImport,
  jobs: jobsImport,
});

export const { definePlugin, log, kv, config, secrets, progress, sessions, stats, commands, jobs } = sdk;

export {
  API_VERSION,
  CAPABILITIES,
  ROLES,
  Arg,
  Failed,
  HostError,
  PluginError,
  Reply,
  Usage,
  arg,
  reply,
} from "./core.js";
