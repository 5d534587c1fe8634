/**
 * Federation scenarios judged by Istio itself. Each scenario runs meshfed's real commands against emulated
 * clusters on Istio 1.30.3 and dumps every object of every cluster; then each call a user would check is traced
 * by the Istio oracle (Istio's translator per proxy, `envoy --mode validate` on every config) and by the
 * data-path model. Each test asserts the right answer (from Istio's verdict) and that the model agrees with Istio;
 * a failure prints both verdicts, the oracle's hop by hop.
 *
 * Calls meshfed gets wrong today are `test.serial.failing`, each naming the issue item that fixes it: when the fix
 * lands the test passes, ava reports the failing test as passing, and it must become a plain test.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { runScenario, SCENARIOS, type RanScenario, type Scenario, type ScenarioCall } from './support/scenarios.js';
import { describeBoth, envoyMode, modelVerdict, oracleBinary, oracleVerdict, oracleWorkloadCluster, report, short, worldFromDump, type Call } from './support/verdict.js';

// Build the oracle (when stale) before any test runs: the build blocks this process for minutes the first time.
test.before(() => {
  oracleBinary();
});

const runs = new Map<string, Promise<RanScenario>>();

/** Each scenario runs once, when its first call is checked; its clusters are stopped as soon as they are dumped. */
function ran(scenario: Scenario): Promise<RanScenario> {
  let run = runs.get(scenario.name);
  if (!run) {
    run = runScenario(scenario);
    runs.set(scenario.name, run);
  }
  return run;
}

async function judge(t: ExecutionContext, scenario: Scenario, index: number, expectation: ScenarioCall): Promise<void> {
  const state = await ran(scenario);
  const { call } = state.calls[index]! as { call: Call };
  // One after the other: the model's TLS handshakes are real and must not compete with Istio's build for the CPU.
  const model = await modelVerdict(worldFromDump(state.dir), call);
  const oracle = await oracleVerdict(state.dir, call, expectation.live && envoyMode() !== 'off' ? 'live' : envoyMode());
  const both = describeBoth(call, model, oracle);
  report(`scenario-${scenario.name}-${index}`, `${scenario.name}: ${expectation.title}\n${both}`);
  t.log(both);

  // The right answer, as Istio's own translator and Envoy see the state meshfed left.
  const right = 'reached' in expectation.expect ? { verdict: 'reached', refusedAt: null } : { verdict: 'refused', refusedAt: expectation.expect.refusedAt };
  t.deepEqual(short(oracle), right, `Istio's verdict is not the right one\n${both}\n${state.log}`);
  if ('reached' in expectation.expect && expectation.expect.cluster) {
    t.is(oracleWorkloadCluster(oracle), expectation.expect.cluster, `the call must reach the workload in ${expectation.expect.cluster}\n${both}`);
  }

  if (expectation.live && envoyMode() !== 'off') {
    t.truthy(oracle.live, `the live Envoy run reported nothing\n${both}`);
    t.is(oracle.live?.reached, 'reached' in expectation.expect, `real Envoy gateways disagree with the expected outcome\n${both}`);
  }

  // The model must agree with Istio (or say plainly that it cannot judge what it does not implement).
  if (scenario.modelAbstains) {
    t.is(model.verdict, 'cannot-judge', `the model now judges this scenario (${scenario.modelAbstains}): compare it with the oracle\n${both}`);
    return;
  }
  t.deepEqual(short(model), short(oracle), `the model and Istio disagree\n${both}`);
  if (oracle.verdict === 'reached') t.is(model.workloadCluster, oracleWorkloadCluster(oracle), `the model and Istio reach different clusters\n${both}`);
}

for (const scenario of SCENARIOS) {
  scenario.calls.forEach((expectation, index) => {
    const title = `${scenario.name}: ${expectation.title}`;
    const body = (t: ExecutionContext) => judge(t, scenario, index, expectation);
    // Known failures (expectation.knownFailure names the issue item): marked failing until the fix lands.
    if (expectation.knownFailure) test.serial.failing(`${title} [known failure: ${expectation.knownFailure}]`, body);
    else test.serial(title, body);
  });
}
