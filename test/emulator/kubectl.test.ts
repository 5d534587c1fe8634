/**
 * Conformance against the real kubectl. /usr/bin/kubectl dispatches on the server's version, so the emulator
 * reporting 1.27 and 1.33 runs two different kubectl releases; each case asserts what a user would read.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startWorld } from '../support/emulator/index.js';
import type { ContainerRuntime, World } from '../support/emulator/index.js';
import { runKubectl } from '../support/emulator/kubectl.js';
import type { KubectlResult } from '../support/emulator/kubectl.js';

/** Containers whose command is `echo …` print their arguments, then serve until stopped. */
const echoRuntime: ContainerRuntime = (run) => {
  if (run.container.command?.[0] !== 'echo') return undefined;
  run.log(`${[...run.container.command.slice(1), ...(run.container.args ?? [])].join(' ')}\n`);
  return new Promise((resolve) => run.signal.addEventListener('abort', () => resolve(0), { once: true }));
};

const GATEWAY = (port: string, extra = ''): string => `apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: cross-network
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: ${port}
      name: tls
      protocol: TLS
    tls:
      mode: AUTO_PASSTHROUGH
    hosts: ["*.local"]
${extra}`;

const DEPLOYMENT = (replicas: number): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: apps
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: hello
        image: busybox:1.36
        command: [echo, hello from the emulator]
`;

for (const [serverVersion, kubectlMinor] of [['1.27.3', '27'], ['1.33.1', '33']] as const) {
  let world: World;
  let cacheDir: string;
  let dir: string;
  const kubectl = (args: string[], stdin?: string): Promise<KubectlResult> =>
    runKubectl(args, { kubeconfig: world.kubeconfigPath, cacheDir, cwd: dir, ...(stdin !== undefined ? { stdin } : {}) });

  test.before(async () => {
    world = await startWorld({
      clusters: [{ name: 'cluster1', kubernetesVersion: serverVersion }],
      istio: '1.18.0',
      runtimes: [echoRuntime],
      execHandlers: [(e) => (e.command[0] === 'printenv' ? Promise.resolve({ stdout: `${e.pod.metadata.name}/${e.container}\n`, stderr: '', exitCode: 0 }) : undefined)],
    });
    dir = mkdtempSync(join(tmpdir(), 'meshfed-kubectl-'));
    cacheDir = join(dir, 'cache');
    world.clusters[0]!.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } });
  });
  test.after.always(async () => {
    await world?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // One test per version: kubectl calls run one after another (they share the discovery cache) and the two
  // versions run concurrently.
  test(`kubectl ${kubectlMinor}: get, apply (client- and server-side), wait, logs, exec and delete`, async (t) => {
    const version = await kubectl(['version', '-o', 'json']);
    t.is(version.code, 0, version.stderr);
    const versions = JSON.parse(version.stdout) as { clientVersion: { minor: string }; serverVersion: { gitVersion: string } };
    t.is(versions.clientVersion.minor, kubectlMinor);
    t.is(versions.serverVersion.gitVersion, `v${serverVersion}`);

    // Client-side apply: create, unchanged, configured.
    writeFileSync(join(dir, 'deploy.yaml'), DEPLOYMENT(1));
    t.is((await kubectl(['apply', '-f', 'deploy.yaml'])).stdout, 'deployment.apps/hello created\n');
    t.is((await kubectl(['apply', '-f', 'deploy.yaml'])).stdout, 'deployment.apps/hello unchanged\n');
    const updated = await kubectl(['apply', '-f', '-'], DEPLOYMENT(2));
    t.is(updated.stdout, 'deployment.apps/hello configured\n', updated.stderr);

    // wait, with a condition and with a JSONPath expression.
    const available = await kubectl(['-n', 'apps', 'wait', '--for=condition=Available', 'deployment/hello', '--timeout=20s']);
    t.is(available.stdout, 'deployment.apps/hello condition met\n', available.stderr);
    const ready = await kubectl(['-n', 'apps', 'wait', '--for=condition=Ready', 'pod', '-l', 'app=hello', '--timeout=20s']);
    t.regex(ready.stdout, /^pod\/hello-\w+-\w+ condition met\npod\/hello-\w+-\w+ condition met\n$/, ready.stderr);
    const replicas = await kubectl(['-n', 'apps', 'wait', '--for=jsonpath={.status.readyReplicas}=2', 'deployment/hello', '--timeout=20s']);
    t.is(replicas.stdout, 'deployment.apps/hello condition met\n', replicas.stderr);

    // get: table, jsonpath, json and yaml.
    const table = await kubectl(['-n', 'apps', 'get', 'pods']);
    const lines = table.stdout.trimEnd().split('\n');
    t.regex(lines[0] ?? '', /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    t.is(lines.length, 3);
    for (const line of lines.slice(1)) t.regex(line, /^hello-\w+-\w+\s+1\/1\s+Running\s+0\s+\d+s$/);
    const svc = await kubectl(['-n', 'istio-system', 'get', 'svc', 'istio-ingressgateway']);
    t.regex(svc.stdout, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\nistio-ingressgateway\s+LoadBalancer\s+10\.96\.\d+\.\d+\s+198\.51\.100\.\d+\s+15021:\d+\/TCP,80:\d+\/TCP,443:\d+\/TCP,15443:\d+\/TCP\s+\d+s\n$/);
    const jsonpath = await kubectl(['-n', 'istio-system', 'get', 'svc', 'istio-ingressgateway', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}']);
    t.regex(jsonpath.stdout, /^198\.51\.100\.\d+$/);
    const json = JSON.parse((await kubectl(['-n', 'apps', 'get', 'deploy', 'hello', '-o', 'json'])).stdout) as { spec: { replicas: number }; metadata: { annotations: Record<string, string> } };
    t.is(json.spec.replicas, 2);
    t.truthy(json.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
    const yaml = await kubectl(['-n', 'istio-system', 'get', 'configmap', 'istio', '-o', 'yaml']);
    t.regex(yaml.stdout, /trustDomain: cluster1\.local/);

    // logs: what the runtime printed, through the deployment as users do.
    const logs = await kubectl(['-n', 'apps', 'logs', 'deployment/hello']);
    t.is(logs.stdout, 'hello from the emulator\n', logs.stderr);

    // exec: over WebSockets from kubectl 1.30 on; older kubectl speaks SPDY, which is refused with a reason.
    const exec = await kubectl(['-n', 'apps', 'exec', 'deployment/hello', '--', 'printenv', 'HOSTNAME']);
    if (Number(kubectlMinor) >= 30) t.regex(exec.stdout, /^hello-\w+-\w+\/hello\n$/, exec.stderr);
    else t.is(exec.stderr.trim(), 'Error from server (BadRequest): the emulator supports exec over WebSockets only (kubectl 1.30 or later); SPDY upgrades are not emulated');

    // Server-side apply of an Istio object: accepted when valid, the server's message when not.
    writeFileSync(join(dir, 'gw.yaml'), GATEWAY('15443'));
    const applied = await kubectl(['apply', '--server-side', '-f', 'gw.yaml']);
    t.is(applied.stdout, 'gateway.networking.istio.io/cross-network serverside-applied\n', applied.stderr);
    const mistyped = await kubectl(['apply', '--server-side', '-f', '-'], GATEWAY('tls'));
    t.is(mistyped.code, 1);
    t.is(mistyped.stderr.trim(), 'The Gateway "cross-network" is invalid: spec.servers[0].port.number: Invalid value: "string": spec.servers[0].port.number in body must be of type integer: "string"');
    const unknown = await kubectl(['apply', '--server-side', '-f', '-'], GATEWAY('15443', '    tlss:\n      mode: SIMPLE\n'));
    t.is(unknown.code, 1);
    t.is(unknown.stderr.trim(), 'Error from server (BadRequest): Gateway in version "v1beta1" cannot be handled as a Gateway: strict decoding error: unknown field "spec.servers[0].tlss"');
    // Nothing of the rejected applies reached the stored object.
    const stored = await kubectl(['-n', 'istio-system', 'get', 'gateway', 'cross-network', '-o', 'jsonpath={.spec.servers[0].port.number}']);
    t.is(stored.stdout, '15443');
    // A core object first applied client-side, then server-side with a changed value: no conflict (the
    // last-applied fields pass to the server-side applier), then client-side again.
    const settings = (mode: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: apps}\ndata: {mode: ${mode}}\n`;
    t.is((await kubectl(['apply', '-f', '-'], settings('local'))).stdout, 'configmap/settings created\n');
    const core = await kubectl(['apply', '--server-side', '-f', '-'], settings('federated'));
    t.is(core.stdout, 'configmap/settings serverside-applied\n', core.stderr);
    const again = await kubectl(['apply', '-f', '-'], settings('both'));
    t.is(again.stdout, 'configmap/settings configured\n', again.stderr);
    t.is((await kubectl(['-n', 'apps', 'get', 'configmap', 'settings', '-o', 'jsonpath={.data.mode}'])).stdout, 'both');

    // Printer columns of a CRD (DestinationRule: Host), and delete.
    const dr = await kubectl(['apply', '-f', '-'], 'apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: apps}\nspec: {host: reviews.apps.svc.cluster.local}\n');
    t.is(dr.stdout, 'destinationrule.networking.istio.io/reviews created\n', dr.stderr);
    t.regex((await kubectl(['-n', 'apps', 'get', 'dr'])).stdout, /^NAME\s+HOST\s+AGE\nreviews\s+reviews\.apps\.svc\.cluster\.local\s+\d+s\n$/);
    const deleted = await kubectl(['-n', 'apps', 'delete', 'deployment', 'hello']);
    t.is(deleted.stdout, 'deployment.apps "hello" deleted\n', deleted.stderr);
    const gone = await kubectl(['-n', 'apps', 'get', 'deployment', 'hello']);
    t.is(gone.code, 1);
    t.is(gone.stderr.trim(), 'Error from server (NotFound): deployments.apps "hello" not found');
  });
}
