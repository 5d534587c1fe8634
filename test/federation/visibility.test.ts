// Visibility settings of production meshes: a Service exported to its own namespace only (annotation or the mesh's
// defaultServiceExportTo) is refused before anything is written, with the exact change; a Sidecar resource that
// scopes the import namespace is reported with the hosts to add; the egress gateway meshfed deploys is made visible.
// The data-path model carries (or stops) the traffic as Istio would.
import test from 'ava';
import { FederationInputError, planExport, type KubeObject } from '../../src/federation/index.js';
import { cacertsData, createIntermediateCA, createRootCA, simulateCurl, staticWorld } from '../support/mesh/index.js';
import { POSTGRES_CHECK, secret } from '../support/mesh/scenarios.js';
import { runScenarioInput, scenarioInput, type ScenarioResult } from './scenario.js';

type Loose = KubeObject & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

test('a Service annotated exportTo "." is refused at export: the gateway could not see it; the message has the exact annotation', (t) => {
  const input = scenarioInput('seed-question-shared-root-tcp');
  input.provider.services[0]!.exportTo = ['.'];
  const error = t.throws(() => runScenarioInput(input), { instanceOf: FederationInputError });
  t.is(error?.flag, '--service');
  t.regex(error!.message, /Service db\/postgres is not visible to the federation gateway in namespace istio-meshfed \(its annotation networking\.istio\.io\/exportTo=\.\)/);
  t.regex(error!.message, /kubectl annotate service postgres -n db networking\.istio\.io\/exportTo=\.,istio-meshfed --overwrite$/);
});

test('the mesh default defaultServiceExportTo ["."] is refused the same way; annotated for the gateway namespace, the export goes ahead', (t) => {
  const input = scenarioInput('seed-question-shared-root-tcp');
  input.provider.defaultServiceExportTo = ['.'];
  const error = t.throws(() => planExport({ ...input.provider, existing: [] }, input.export), { instanceOf: FederationInputError });
  t.regex(error!.message, /the mesh's defaultServiceExportTo \["\."\].*networking\.istio\.io\/exportTo=\.,istio-meshfed --overwrite/);
  input.provider.services[0]!.exportTo = ['.', 'istio-meshfed'];
  t.notThrows(() => runScenarioInput(input));
});

test('boundary on a consumer mesh whose defaultServiceExportTo is ["."]: the egress gateway Service meshfed deploys is exported to every namespace', (t) => {
  const input = scenarioInput('boundary-tcp');
  input.provider.istioVersion = '1.18.0';
  input.consumer.istioVersion = '1.18.0';
  input.consumer.defaultServiceExportTo = ['.'];
  const r = runScenarioInput(input);
  const egress = r.importPlan.objects.find((o) => o.kind === 'Service' && o.metadata.name === 'meshfed-egress')!;
  t.is(egress.metadata.annotations?.['networking.istio.io/exportTo'], '*');
  const plain = runScenarioInput({ ...scenarioInput('boundary-tcp'), consumer: { ...input.consumer, defaultServiceExportTo: undefined } as typeof input.consumer, provider: input.provider });
  t.is(plain.importPlan.objects.find((o) => o.kind === 'Service' && o.metadata.name === 'meshfed-egress')!.metadata.annotations, undefined, 'no annotation when nothing hides it');
});

const sidecar = (hosts: string[], port?: number): KubeObject => ({
  apiVersion: 'networking.istio.io/v1beta1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'vault' },
  spec: { egress: [{ ...(port ? { port: { number: port, protocol: 'TCP', name: `tcp-${port}` } } : {}), hosts }] },
});

test('a Sidecar of the import namespace that does not select the import: import warns with the hosts to add', (t) => {
  const input = scenarioInput('seed-question-shared-root-tcp');
  input.consumer.existing = [sidecar(['istio-system/*'])];
  const r = runScenarioInput(input);
  const warning = r.importPlan.warnings.find((w) => w.startsWith('Sidecar vault/default'));
  t.truthy(warning, r.importPlan.warnings.join('\n'));
  t.regex(warning!, /Fix: add "vault\/postgres\.vault\.svc\.cluster\.local", "vault\/postgres\.vault\.import\.meshfed\.internal" to the hosts of Sidecar vault\/default's egress listener without a port/);
  const fine = runScenarioInput({ ...input, consumer: { ...input.consumer, existing: [sidecar(['./*', 'istio-system/*'])] } });
  t.false(fine.importPlan.warnings.some((w) => w.startsWith('Sidecar')), fine.importPlan.warnings.join('\n'));
  const portScoped = runScenarioInput({ ...input, consumer: { ...input.consumer, existing: [sidecar(['./*'], 3306)] } });
  t.regex(portScoped.importPlan.warnings.find((w) => w.startsWith('Sidecar'))!, /and an egress listener for port 5432 \(or one without a port\)/);
});

test('boundary: a Sidecar that selects the import\'s VirtualService (./*) is enough, the egress gateway comes in as its destination; one that does not is reported', (t) => {
  const input = scenarioInput('boundary-tcp');
  const scoped = runScenarioInput({ ...input, consumer: { ...input.consumer, existing: [sidecar(['./*', 'istio-system/*'])] } });
  t.false(scoped.importPlan.warnings.some((w) => w.startsWith('Sidecar')), scoped.importPlan.warnings.join('\n'));
  const narrow = runScenarioInput({ ...input, consumer: { ...input.consumer, existing: [sidecar(['istio-system/*'])] } });
  t.regex(narrow.importPlan.warnings.find((w) => w.startsWith('Sidecar')) ?? '', /not to vault\/postgres\.vault\.svc\.cluster\.local \(port 5432\), istio-meshfed\/meshfed-egress\.istio-meshfed\.svc\.cluster\.local/);
});

// The data path, with the seed question's clusters (Istio 1.9.1, shared root).
function world(r: ScenarioResult, consumerExtra: KubeObject[], providerMesh = '', postgresAnnotations: Record<string, string> = {}) {
  const root = createRootCA('NRC shared root');
  const pod = (name: string, namespace: string, labels: Record<string, string>, sa: string, containers: unknown[], ip: string): KubeObject => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { ...labels, 'security.istio.io/tlsMode': 'istio' } },
    spec: { serviceAccountName: sa, containers: [...containers, { name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.9.1' }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] },
  });
  const realise = (objects: KubeObject[], subnet: string, overlay: KubeObject | undefined, lb?: string): KubeObject[] => {
    let n = 40;
    const out = objects.map((o) => structuredClone(o) as Loose);
    for (const o of out) if (o.kind === 'Service') o.spec.clusterIP = `${subnet.replace(/^10\.24/, '10.9')}.${n++}`;
    for (const c of [...((overlay as Loose | undefined)?.spec.components.ingressGateways ?? [])]) {
      out.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: c.name, namespace: c.namespace }, spec: { type: 'LoadBalancer', clusterIP: `10.96.90.${n++}`, selector: c.label, ports: c.k8s.service.ports }, status: { loadBalancer: { ingress: [{ ip: lb }] } } } as Loose);
      out.push({
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `${c.name}-7c9f2`, namespace: c.namespace, labels: c.label },
        spec: { serviceAccountName: `${c.name}-service-account`, containers: [{ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.9.1', env: c.k8s.env ?? [], ports: [{ containerPort: 15443 }] }] },
        status: { phase: 'Running', podIP: `${subnet}.${n++}`, conditions: [{ type: 'Ready', status: 'True' }] },
      } as Loose);
    }
    return out;
  };
  const mesh = (td: string, extra = ''): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: `trustDomain: ${td}\n${extra}` } });
  return staticWorld({
    production: [
      mesh(r.input.provider.trustDomain!, `trustDomainAliases: [${r.input.provider.trustDomainAliases!.join(', ')}]\n${providerMesh}`),
      secret('istio-system', 'cacerts', cacertsData(createIntermediateCA('production intermediate', root))),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'postgres', namespace: 'db', annotations: postgresAnnotations }, spec: { clusterIP: '10.101.20.5', selector: { app: 'postgres' }, ports: [{ name: 'tcp-postgres', port: 5432, targetPort: 5432 }] } },
      pod('postgres-0', 'db', { app: 'postgres' }, 'postgres', [{ name: 'postgres', image: 'docker.io/library/postgres:15', ports: [{ containerPort: 5432 }] }], '10.245.8.10'),
      ...realise(r.providerObjects, '10.245.7', r.admission.overlay, r.input.provider.gatewayAddress),
    ],
    operations: [
      mesh(r.input.consumer.trustDomain!), secret('istio-system', 'cacerts', cacertsData(createIntermediateCA('operations intermediate', root))),
      pod('vault-0', 'vault', { app: 'vault' }, 'vault', [{ name: 'vault', image: 'busybox:1.36' }], '10.244.5.10'),
      ...consumerExtra,
      ...realise(r.consumerObjects, '10.244.6', undefined),
    ],
  });
}

const vault = (w: ReturnType<typeof world>) => simulateCurl(w, { cluster: 'operations', namespace: 'vault', pod: 'vault-0' }, ['sh', '-c', POSTGRES_CHECK], { random: () => 0 });

test.serial('data path: a Sidecar with ./* and istio-system/* lets Vault reach postgres; one with istio-system/* only does not', async (t) => {
  const r = runScenarioInput(scenarioInput('seed-question-shared-root-tcp'));
  const scoped = await vault(world(r, [sidecar(['./*', 'istio-system/*'])]));
  t.is(scoped.stdout.trim(), 'postgres answered', `${scoped.stderr}\n${scoped.trace.join('\n')}`);
  const narrow = await vault(world(r, [sidecar(['istio-system/*'])]));
  t.is(narrow.stdout.trim(), 'no answer from postgres', narrow.trace.join('\n'));
  t.false(narrow.trace.some((h) => h.includes(`LoadBalancer ${r.input.provider.gatewayAddress}`)), 'nothing leaves for the provider');
});

test.serial('data path: defaultServiceExportTo ["."] on the provider hides postgres from the gateway; the annotation the export asks for shows it again', async (t) => {
  const input = scenarioInput('seed-question-shared-root-tcp');
  input.provider.services[0]!.exportTo = ['.', 'istio-meshfed'];
  const r = runScenarioInput(input);
  const hidden = await vault(world(r, [], 'defaultServiceExportTo: ["."]\n'));
  t.is(hidden.stdout.trim(), 'no answer from postgres', hidden.trace.join('\n'));
  const shown = await vault(world(r, [], 'defaultServiceExportTo: ["."]\n', { 'networking.istio.io/exportTo': '.,istio-meshfed' }));
  t.is(shown.stdout.trim(), 'postgres answered', `${shown.stderr}\n${shown.trace.join('\n')}`);
});
