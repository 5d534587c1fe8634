// The checks of `kubectl meshfed verify`: catalogue, snapshot types, the static checks and their runner, and the
// probe as data. Pure: the snapshots are gathered by src/kube/verify-gather.ts, results printed by src/ui/checks.ts.
export {
  CATALOGUE, CATEGORIES, checkInfo, docsAnchor, docsUrl, fillTemplate, type CheckCategory, type CheckInfo, type CheckLevel,
} from './catalogue.js';
export type { CheckResult, MeshFacts, Outcome, ProviderSide, SideSnapshot, VerifySnapshot } from './types.js';
export { failure, resultOf, runChecks, type CheckDefinition, type Finding } from './runner.js';
export { differences, EXPIRY_WARNING_DAYS, STATIC_CHECKS } from './definitions.js';
export {
  DEFAULT_PROBE_IMAGE, interpretProbe, parseProbeLog, PROBE_MARKER, PROBE_ROLE, probeIdentity, probeIdentityFor, probePod, probeRunResults, probeScript, responseFlagsOf,
  tcpGreeting, type ProbeContext, type ProbeIdentity, type ProbeOutput, type ProbePodOptions, type ProbeRun, type ProbeTarget,
} from './probe.js';
