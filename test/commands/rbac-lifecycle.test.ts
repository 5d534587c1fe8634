/**
 * Least privilege for the lifecycle commands: `rotate` (server, client and federation CA certificates) and
 * `uninstall` run as users bound only to the documented roles of `kubectl meshfed rbac` (docs/rbac.md): the provider
 * role on the provider, the consumer role on the consumer (and, for `rotate --from`, the provider role there, as for
 * `import --from`). Without a rule they need, they fail before writing anything and name the missing verb, resource and
 * namespace.
 *
 * Users: alice is the provider operator (cluster2), bob the consumer operator (cluster1; on cluster2 he acts as alice).
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RBAC_RULES, type RbacRole, type RbacRule } from '../../src/federation/rbac.js';
import { runCli, writeKubeconfig, type CliResult } from '../support/cli.js';
import type { EmulatedCluster } from '../support/emulator/index.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import { bindRole, describeRule, namesRule, withWrites } from '../support/rbac.js';

type Operator = Exclude<RbacRole, 'viewer'>;
const USERS: Record<Operator, string> = { provider: 'alice', consumer: 'bob' };

const EXPORT = ['export', '--context', 'cluster2', '-n', 'bookinfo', '--service', 'myreviews', '--port', 'http', '--name', 'reviews'];
const IMPORT = ['import', '--context', 'cluster1', '-n', 'default', '--from', 'cluster2', '--export', 'bookinfo/reviews', '--name', 'myreviews'];
const ROTATE_SERVER = ['rotate', '--context', 'cluster2'];
const ROTATE_CLIENT = ['rotate', '--context', 'cluster1', '--from', 'cluster2'];
const ROTATE_CA = ['rotate', '--context', 'cluster2', '--ca'];
const FINISH_CA = ['rotate', '--context', 'cluster2', '--ca', '--finish'];
const UNINSTALL_CONSUMER = ['uninstall', '--context', 'cluster1', '--force', '--yes'];
const UNINSTALL_PROVIDER = ['uninstall', '--context', 'cluster2', '--force', '--yes'];

interface World {
  fed: FederationWorld;
  kubeconfigs: Record<Operator, string>;
}

async function world(): Promise<World> {
  const fed = await startFederationWorld({ seed: 'bookinfo', clusters: [{ name: 'cluster1' }, { name: 'cluster2' }] });
  const dir = mkdtempSync(join(tmpdir(), 'meshfed-rbac-lifecycle-'));
  const c1 = fed.world.cluster('cluster1');
  const c2 = fed.world.cluster('cluster2');
  for (const cluster of [c1, c2]) for (const user of Object.values(USERS)) cluster.addToken(`${user}-token`, user);
  const entry = (cluster: EmulatedCluster, user: string) => ({ name: cluster.name, server: cluster.server, caPem: cluster.caPem, token: `${user}-token`, user: `${user}-${cluster.name}` });
  const kubeconfigs = {
    provider: writeKubeconfig([entry(c2, 'alice')], 'cluster2', dir),
    consumer: writeKubeconfig([entry(c1, 'bob'), entry(c2, 'alice')], 'cluster1', dir),
  };
  await bind(fed, c2, 'provider');
  await bind(fed, c1, 'consumer');
  return { fed, kubeconfigs };
}

/** Binds `role` to its user in `cluster` with exactly `rules` (the role's by default), in the scenario's application namespace. */
function bind(fed: FederationWorld, cluster: EmulatedCluster, role: Operator, rules?: readonly RbacRule[]): Promise<void> {
  return bindRole(fed.world, cluster, role, USERS[role], { namespaces: role === 'provider' ? ['bookinfo'] : ['default'], ...(rules ? { rules } : {}) });
}

/** Runs a command as `role`'s user, in this process; also returns the writes the clusters received from it. */
function as(w: World, role: Operator, args: string[]): Promise<CliResult & { writes: string[] }> {
  return withWrites(w.fed.world, () => runCli([...args, '--kubeconfig', w.kubeconfigs[role]]));
}

test.serial('rotate (server, client, federation CA) and uninstall run as users bound only to their roles', async (t) => {
  const w = await world();
  try {
    const steps: Array<[Operator, string[]]> = [
      ['provider', EXPORT], ['consumer', IMPORT],
      ['provider', ROTATE_SERVER], ['consumer', ROTATE_CLIENT],
      ['provider', ROTATE_CA], ['consumer', ROTATE_CLIENT], ['provider', FINISH_CA],
      ['consumer', UNINSTALL_CONSUMER], ['provider', UNINSTALL_PROVIDER],
    ];
    for (const [role, args] of steps) {
      const result = await as(w, role, args);
      t.is(result.code, 0, `${role}: kubectl meshfed ${args.join(' ')}\n${result.stderr}`);
    }
    for (const cluster of w.fed.world.clusters) {
      const left = cluster.list('v1', 'ConfigMap').filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'kubectl-meshfed');
      t.deepEqual(left.map((o) => o.metadata.name), [], `${cluster.name}: no record left`);
    }
  } finally {
    await w.fed.stop();
  }
});

/**
 * For each rule of `role`: bound without it, `command` either does not need it (it succeeds) or fails before writing
 * and names it; `setup` (with the full roles) first brings the clusters where the command has work to do.
 */
async function withoutEachRule(t: ExecutionContext, role: Operator, setup: Array<[Operator, string[]]>, command: string[], options: { again: boolean }): Promise<void> {
  t.timeout(900_000);
  const w = await world();
  try {
    const cluster = w.fed.world.cluster(role === 'provider' ? 'cluster2' : 'cluster1');
    const ready = async () => {
      await bind(w.fed, cluster, role);
      // The provider's export is there for the consumer's import (uninstall of a consumer leaves it).
      for (const [r, args] of setup) {
        const result = await as(w, r, args);
        t.is(result.code, 0, `setup: kubectl meshfed ${args.join(' ')}\n${result.stderr}`);
      }
    };
    await ready();
    let needed = 0;
    for (const [index, rule] of RBAC_RULES[role].entries()) {
      if (rule.when) continue;
      await bind(w.fed, cluster, role, RBAC_RULES[role].filter((_, i) => i !== index));
      const result = await as(w, role, command);
      if (result.code === 0) {
        // Not needed by this command: it did its work; the next rule starts again from a cluster with work to do.
        if (!options.again) await ready();
        else await bind(w.fed, cluster, role);
        continue;
      }
      needed += 1;
      t.regex(result.stderr, namesRule(rule), `without ${describeRule(rule)}: the message names the rule`);
      t.deepEqual(result.writes, [], `without ${describeRule(rule)}: nothing was sent`);
    }
    t.true(needed > 0, 'the command needs some of the role\'s rules');
    t.log(`${command.join(' ')}: ${needed} of ${RBAC_RULES[role].filter((r) => !r.when).length} rules needed`);
  } finally {
    await w.fed.stop();
  }
}

test.serial('rotate of the server certificates without any one provider rule it needs fails before writing and names it', async (t) => {
  // A rotation always has work to do again: new keys each time.
  await withoutEachRule(t, 'provider', [['provider', EXPORT]], ROTATE_SERVER, { again: true });
});

test.serial('uninstall of a provider without any one provider rule it needs fails before writing and names it', async (t) => {
  await withoutEachRule(t, 'provider', [['provider', EXPORT]], UNINSTALL_PROVIDER, { again: false });
});

test.serial('uninstall of a consumer without any one consumer rule it needs fails before writing and names it', async (t) => {
  await withoutEachRule(t, 'consumer', [['provider', EXPORT], ['consumer', IMPORT]], UNINSTALL_CONSUMER, { again: false });
});
