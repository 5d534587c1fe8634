/**
 * Differential testing of the data-path model against Istio: every fault the model knows
 * (test/support/mesh/faults.ts), applied to its seed scenario, is judged by both. They must agree on the verdict
 * and on the hop that refuses, and that hop must be the one the fault belongs to. The scenarios run on Istio
 * 1.30.3 (every proxy image is set to it) because the oracle judges current Istio; a fault that only older
 * releases suffer from must reach the backend here.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOUNDARY_SCENARIO, MODEL_FAULTS, SHARED_ROOT_SCENARIO, type FaultCall, type FaultScenario, type FaultWorld, type ModelFault } from '../support/mesh/faults.js';
import { dumpView } from './support/dump.js';
import { ORACLE_ISTIO } from './support/scenarios.js';
import { describeBoth, modelVerdict, oracleBinary, oracleVerdict, report, short, worldFromDump, type Verdict } from './support/verdict.js';

const [MAJOR, MINOR] = ORACLE_ISTIO.split('.').map(Number) as [number, number];

/** Runs every proxy of the world (sidecars, gateways) and istiod on the oracle's Istio release. */
function onOracleIstio(world: FaultWorld): void {
  for (const cluster of world.clusters()) {
    for (const pod of cluster.list('', 'Pod')) {
      const spec = pod.spec as { containers?: Array<{ image: string }> };
      if (!spec.containers?.some((c) => /(^|\/)proxyv2:/.test(c.image))) continue;
      for (const c of spec.containers) c.image = c.image.replace(/(^|\/)(proxyv2|pilot):[^@\s]+$/, `$1$2:${ORACLE_ISTIO}`);
      world.add(cluster.name, pod);
    }
  }
}

async function judge(scenario: FaultScenario, fault: ModelFault | undefined, call: FaultCall) {
  const world = scenario.world();
  fault?.apply(world);
  onOracleIstio(world);
  const dir = mkdtempSync(join(tmpdir(), `meshfed-oracle-fault-${scenario.name}-`));
  dumpView(world, dir);
  // One after the other: the model's TLS handshakes are real and must not compete with Istio's build for the CPU.
  const model = await modelVerdict(worldFromDump(dir), call);
  const oracle = await oracleVerdict(dir, call);
  return { model, oracle, both: describeBoth(call, model, oracle) };
}

// Build the oracle (when stale) before any test runs: the build blocks this process for minutes the first time.
test.before(() => {
  oracleBinary();
});

const REACHED: Verdict = { verdict: 'reached', refusedAt: null };

for (const scenario of [BOUNDARY_SCENARIO, SHARED_ROOT_SCENARIO]) {
  test.serial(`${scenario.name} seed scenario without a fault: both reach the backend`, async (t) => {
    const { model, oracle, both } = await judge(scenario, undefined, scenario.probe);
    report(`fault-${scenario.name}-none`, both);
    t.deepEqual(short(oracle), REACHED, `Istio does not reach the backend\n${both}`);
    t.deepEqual(short(model), short(oracle), `the model and Istio disagree\n${both}`);
  });
}

for (const fault of MODEL_FAULTS) {
  const olderOnly = fault.before && (MAJOR < fault.before[0] || (MAJOR === fault.before[0] && MINOR < fault.before[1])) === false;
  const expected: Verdict = olderOnly ? REACHED : { verdict: 'refused', refusedAt: fault.hop };
  const title = olderOnly
    ? `fault ${fault.id}: ${fault.description} -> only Istio < ${fault.before!.join('.')}; ${ORACLE_ISTIO} reaches the backend`
    : `fault ${fault.id}: ${fault.description} -> refused at ${fault.hop}`;
  test.serial(title, async (t) => {
    const { model, oracle, both } = await judge(fault.scenario, fault, fault.call ?? fault.scenario.probe);
    report(`fault-${fault.id}`, `${fault.id}: ${fault.description}\n${both}`);
    t.log(both);
    t.deepEqual(short(oracle), expected, `Istio does not refuse at the fault's hop\n${both}`);
    t.deepEqual(short(model), short(oracle), `the model and Istio disagree\n${both}`);
  });
}
