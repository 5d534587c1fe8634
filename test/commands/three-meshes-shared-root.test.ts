/**
 * The three-mesh question in its own mode: operations, staging and production share one root CA, production
 * exports Postgres (TCP) in shared-root mode to the Vault service account of operations only. On Istio 1.9.1 (the
 * question's release) and on 1.30.3, in both arrangements in which the provider mesh accepts operations' trust
 * domain (meshConfig.trustDomainAliases, or PILOT_SKIP_VALIDATE_TRUST_DOMAIN on istiod): Vault's own pod reaches
 * Postgres, a pod with another service account in `vault` does not, and neither does staging (trust domain
 * `cluster.local`, which the provider still lists as an alias from its own migration) with a twin of Vault's
 * identity and a copy of operations' import; revoking operations cuts Vault off and says so. staging itself
 * cannot be admitted (`cluster.local`), and a signed request with a wildcard trust domain is refused.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { createImportRequest, serializeDocument } from '../../src/federation/index.js';
import type { IstioVersion } from '../support/crd-schema.js';
import { startFederationWorld, type FederationWorld } from '../support/federation.js';
import type { KubeObject } from '../support/emulator/index.js';

/** The postgres SSLRequest; postgres answers "N". Through postgres.vault:5432, the imported name. */
const POSTGRES_PROBE = "printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 postgres.vault 5432 | grep -q N && echo postgres answered || { echo no answer from postgres; exit 1; }";
const EXPORT = ['export', '--context', 'production', '-n', 'db', '--service', 'postgres', '--port', '5432', '--mode', 'shared-root'];
const IMPORT = ['import', '--context', 'operations', '-n', 'vault', '--from', 'production', '--export', 'db/postgres', '--service-account', 'vault'];
const REVOKE = ['revoke', '--context', 'production', '-n', 'db', '--name', 'postgres', '--consumer', 'operations'];
const dir = mkdtempSync(join(tmpdir(), 'meshfed-three-meshes-'));

function deployment(namespace: string, name: string, serviceAccount: string, image: string, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace },
    spec: {
      replicas: 1, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { serviceAccountName: serviceAccount, containers: [{ name, image, ...extra }] } },
    },
  };
}

async function start(version: IstioVersion): Promise<FederationWorld> {
  const fed = await startFederationWorld({
    seed: 'federation', istio: version, root: 'shared',
    clusters: [{ name: 'operations' }, { name: 'staging', trustDomain: 'cluster.local' }, { name: 'production' }],
  });
  const operations = fed.world.cluster('operations');
  operations.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'other', namespace: 'vault' } });
  operations.create(deployment('vault', 'intruder', 'other', 'curlimages/curl', { command: ['/bin/sleep', 'infinity'] }));
  if (version.startsWith('1.9.')) {
    // Istio 1.9 deploys no gateway by injection: the east-west gateway of Istio's multicluster samples, with sni-dnat.
    const production = fed.world.cluster('production');
    const labels = { app: 'istio-eastwestgateway', istio: 'eastwestgateway' };
    production.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'istio-eastwestgateway-service-account', namespace: 'istio-system' } });
    production.create({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels },
      spec: {
        replicas: 1, selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'istio-eastwestgateway-service-account',
            containers: [{
              name: 'istio-proxy', image: `docker.io/istio/proxyv2:${version}`, args: ['proxy', 'router'],
              ports: [{ containerPort: 15021 }, { containerPort: 15443 }],
              env: [{ name: 'ISTIO_META_ROUTER_MODE', value: 'sni-dnat' }],
            }],
          },
        },
      },
    });
    production.create({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels },
      spec: { type: 'LoadBalancer', selector: labels, ports: [{ name: 'status-port', port: 15021, targetPort: 15021 }, { name: 'tls', port: 15443, targetPort: 15443 }] },
    });
  }
  return fed;
}

function gatewayFlags(version: IstioVersion): string[] {
  return version.startsWith('1.9.') ? ['--gateway-selector', 'istio=eastwestgateway'] : [];
}

/** Sets the provider's trust domain arrangement: aliases in the mesh config, and istiod's PILOT_SKIP_VALIDATE_TRUST_DOMAIN. */
function arrange(fed: FederationWorld, aliases: string[], skipValidation: boolean): void {
  const production = fed.world.cluster('production');
  const cm = production.get('v1', 'ConfigMap', 'istio-system', 'istio')!;
  const mesh = YAML.parse((cm.data as { mesh: string }).mesh) as Record<string, unknown>;
  production.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { ...(cm.data as Record<string, string>), mesh: YAML.stringify({ ...mesh, trustDomainAliases: aliases }) } }, 'test');
  const istiod = structuredClone(production.get('apps/v1', 'Deployment', 'istio-system', 'istiod')!) as KubeObject & { spec: { template: { spec: { containers: Array<{ name: string; env?: Array<{ name: string; value: string }> }> } } } };
  const discovery = istiod.spec.template.spec.containers.find((c) => c.name === 'discovery')!;
  discovery.env = [...(discovery.env ?? []).filter((e) => e.name !== 'PILOT_SKIP_VALIDATE_TRUST_DOMAIN'), ...(skipValidation ? [{ name: 'PILOT_SKIP_VALIDATE_TRUST_DOMAIN', value: 'true' }] : [])];
  production.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'istiod', namespace: 'istio-system' }, spec: istiod.spec }, 'test');
}

/**
 * staging as the attacker: a pod with Vault's namespace and service account (in its own trust domain) and a copy of
 * the consumer objects operations' import wrote, so it sends Istio mTLS to production's gateway with the right SNI.
 */
function stagingTwin(fed: FederationWorld): void {
  const staging = fed.world.cluster('staging');
  const operations = fed.world.cluster('operations');
  if (!staging.get('v1', 'Namespace', undefined, 'vault')) {
    staging.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vault', labels: { 'istio-injection': 'enabled' } } });
    staging.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'vault', namespace: 'vault' } });
    staging.create(deployment('vault', 'vault-twin', 'vault', 'curlimages/curl', { command: ['/bin/sleep', 'infinity'] }));
    if (!staging.get('v1', 'Namespace', undefined, 'istio-meshfed')) staging.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-meshfed' } });
  }
  const kinds: Array<[string, string]> = [['v1', 'Service'], ['networking.istio.io/v1beta1', 'ServiceEntry'], ['networking.istio.io/v1beta1', 'DestinationRule'], ['networking.istio.io/v1beta1', 'VirtualService']];
  for (const [apiVersion, kind] of kinds) {
    for (const o of operations.list(apiVersion, kind).filter((x) => x.metadata.labels?.['app.kubernetes.io/managed-by'] === 'kubectl-meshfed')) {
      const copy = { apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace, labels: o.metadata.labels }, spec: structuredClone(o.spec) } as KubeObject;
      if (kind === 'Service') {
        const spec = copy.spec as { clusterIP?: string; clusterIPs?: string[] };
        delete spec.clusterIP;
        delete spec.clusterIPs;
      }
      if (!staging.get(apiVersion, kind, o.metadata.namespace, o.metadata.name)) staging.create(copy);
    }
  }
}

async function probe(fed: FederationWorld, cluster: string, app: string) {
  return fed.curl(cluster, 'vault', app, ['sh', '-c', POSTGRES_PROBE]);
}

async function expectReach(t: ExecutionContext, fed: FederationWorld, cluster: string, app: string, reach: boolean, what: string): Promise<void> {
  const r = await probe(fed, cluster, app);
  if (reach) {
    t.is(r.code, 0, `${what}: ${r.stdout}${r.stderr}\n${r.trace.join('\n')}`);
    t.regex(r.stdout, /postgres answered/, what);
  } else {
    t.not(r.code, 0, `${what}: ${r.trace.join('\n')}`);
    t.regex(r.stdout, /no answer from postgres/, what);
  }
}

for (const version of ['1.9.1', '1.30.3'] as IstioVersion[]) {
  let fed: FederationWorld;
  test.before(async () => {
    fed = await start(version);
  });
  test.after.always(async () => {
    await fed?.stop();
  });

  test.serial(`Istio ${version}: production exports Postgres to operations' Vault only, with trustDomainAliases; revoke cuts Vault off and says so`, async (t) => {
    // The provider migrated from cluster.local (still an alias) and accepts operations through an alias: the
    // arrangement in which Istio rewrites aliased principals onto each other.
    arrange(fed, ['cluster.local', 'operations.local'], false);
    const exported = await fed.run([...EXPORT, ...gatewayFlags(version)]);
    t.is(exported.code, 0, exported.stderr);
    if (version === '1.9.1') {
      t.regex(exported.stderr, /Istio 1\.9\.1 on cluster production carries the published vulnerability ISTIO-SECURITY-2021-006 .*Upgrade the mesh to Istio 1\.9\.5 or later/s);
      const gateway = fed.world.cluster('production').get('networking.istio.io/v1beta1', 'Gateway', 'istio-system', 'meshfed-eastwest')!;
      t.deepEqual((gateway.spec as { servers: Array<{ hosts: string[] }> }).servers[0]!.hosts, ['*.postgres.db.svc.cluster.local', 'postgres.db.svc.cluster.local']);
    } else {
      t.notRegex(exported.stderr, /ISTIO-SECURITY-2021-006/);
    }
    const imported = await fed.run(IMPORT);
    t.is(imported.code, 0, imported.stderr);
    t.regex(imported.stderr, /admits the workloads with these identities: spiffe:\/\/operations\.local\/ns\/vault\/sa\/vault\b/);
    t.notRegex(imported.stderr, /PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true on istiod/, 'one recommendation');

    await expectReach(t, fed, 'operations', 'vault', true, 'Vault\'s own pod');
    await expectReach(t, fed, 'operations', 'intruder', false, 'another service account in vault');
    stagingTwin(fed);
    await expectReach(t, fed, 'staging', 'vault-twin', false, 'staging, with Vault\'s namespace and service account in trust domain cluster.local');

    const revoked = await fed.run(REVOKE);
    t.is(revoked.code, 0, revoked.stderr);
    t.regex(revoked.stderr, /operations can no longer reach db\/postgres: the workload guard on Service db\/postgres denies its identities/);
    await expectReach(t, fed, 'operations', 'vault', false, 'Vault after the revoke');
  });

  test.serial(`Istio ${version}: the same with PILOT_SKIP_VALIDATE_TRUST_DOMAIN on istiod instead of aliases`, async (t) => {
    arrange(fed, [], true);
    const imported = await fed.run(IMPORT);
    t.is(imported.code, 0, imported.stderr);
    t.regex(imported.stderr, /only because istiod skips trust domain validation .*listing operations\.local in meshConfig\.trustDomainAliases instead is narrower/s);
    await expectReach(t, fed, 'operations', 'vault', true, 'Vault\'s own pod');
    await expectReach(t, fed, 'operations', 'intruder', false, 'another service account in vault');
    await expectReach(t, fed, 'staging', 'vault-twin', false, 'staging with a twin of Vault\'s identity');
    const verify = await fed.run(['verify', '--context', 'operations', '-n', 'vault', '--name', 'postgres', '--from', 'production', '--no-probe', '-o', 'json']);
    const checks = (JSON.parse(verify.stdout) as { checks: Array<{ code: string; status: string; message: string | null }> }).checks;
    const status = (code: string): string | undefined => checks.find((c) => c.code === code)?.status;
    t.is(status('MF0407'), 'ok', 'verify accepts PILOT_SKIP_VALIDATE_TRUST_DOMAIN as import said');
    t.is(status('MF0423'), 'ok');
    t.is(status('MF0421'), 'ok');
    t.is(status('MF0420'), version === '1.9.1' ? 'fail' : 'ok');
    const revoked = await fed.run(REVOKE);
    t.is(revoked.code, 0, revoked.stderr);
    t.regex(revoked.stderr, /operations can no longer reach db\/postgres/);
    await expectReach(t, fed, 'operations', 'vault', false, 'Vault after the revoke');
  });

  test.serial(`Istio ${version}: staging (trust domain cluster.local) and a wildcard trust domain are refused before anything is written`, async (t) => {
    const staging = await fed.runCounting(['import', '--context', 'staging', '-n', 'apps', '--from', 'production', '--export', 'db/postgres', '--service-account', 'sleep']);
    t.is(staging.code, 1);
    t.regex(staging.stderr, /shared-root cannot admit staging .*trust domain cluster\.local, which Istio reads in a policy as this mesh's own trust domain/);
    t.deepEqual(staging.writes.production, []);
    t.deepEqual(staging.writes.staging, []);

    const { request } = createImportRequest(
      { clusterId: 'operations', istioVersion: version, trustDomain: '*', services: [], existing: [] },
      { consumerClusterId: 'operations', namespace: 'vault', serviceAccounts: ['vault'], export: { providerClusterId: 'production', namespace: 'db', exportName: 'postgres' } },
    );
    writeFileSync(join(dir, `wildcard-${version}.yaml`), serializeDocument(request));
    const admitted = await fed.runCounting(['admit', '--context', 'production', '--request', join(dir, `wildcard-${version}.yaml`), '--bundle-out', join(dir, 'never.yaml')]);
    t.is(admitted.code, 1);
    t.regex(admitted.stderr, /trust domain "\*" is not a trust domain/);
    t.deepEqual(admitted.writes.production, []);
  });

  test.serial(`Istio ${version}: a revoke that cannot take effect says so and exits 1`, async (t) => {
    arrange(fed, ['operations.local'], false);
    t.is((await fed.run(IMPORT)).code, 0);
    // The provider mesh later takes the consumer's trust domain: operations' workloads now pass as local callers.
    const production = fed.world.cluster('production');
    const cm = production.get('v1', 'ConfigMap', 'istio-system', 'istio')!;
    const mesh = YAML.parse((cm.data as { mesh: string }).mesh) as Record<string, unknown>;
    production.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { ...(cm.data as Record<string, string>), mesh: YAML.stringify({ ...mesh, trustDomain: 'operations.local' }) } }, 'test');
    const revoked = await fed.run(REVOKE);
    t.is(revoked.code, 1);
    t.regex(revoked.stderr, /operations is no longer listed as a consumer of db\/postgres, but the workload guard still lets its identities through: its workloads carry this mesh's trust domain \(operations\.local\)/);
    t.notRegex(revoked.stderr, /can no longer reach/);
    production.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: cm.data as Record<string, string> }, 'test');
  });
}
