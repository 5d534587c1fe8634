/**
 * The emulator with the mesh data-path runtimes plugged in, as the sandbox runs them: the contract of
 * runtime.ts seen from both sides.
 */
import test from 'ava';
import { startWorld } from '../support/emulator/index.js';
import { apiRequest } from '../support/emulator/request.js';
import { meshRuntimes } from '../support/mesh/index.js';

test('a probe pod curls a bookinfo service through its sidecar, then stops the sidecar so the pod completes', async (t) => {
  const world = await startWorld({ clusters: [{ name: 'cluster1' }, { name: 'cluster2' }], istio: '1.18.0', seed: 'bookinfo', runtimes: meshRuntimes() });
  try {
    const cluster1 = world.cluster('cluster1');
    cluster1.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'probe', namespace: 'default', annotations: { 'proxy.istio.io/config': '{"holdApplicationUntilProxyStarts": true}' } },
      spec: {
        restartPolicy: 'Never',
        containers: [{
          name: 'curl',
          image: 'curlimages/curl:8.5.0',
          command: ['sh', '-c', 'curl -sS -o /dev/null -w "%{http_code}\\n" http://details:9080/details/0; curl -s -X POST localhost:15020/quitquitquit'],
        }],
      },
    });
    let phase = '';
    for (let i = 0; i < 100 && phase !== 'Succeeded' && phase !== 'Failed'; i++) {
      await world.waitIdle();
      phase = (cluster1.get('v1', 'Pod', 'default', 'probe')?.status as { phase?: string } | undefined)?.phase ?? '';
      if (phase !== 'Succeeded') await new Promise((r) => setTimeout(r, 20));
    }
    t.is(phase, 'Succeeded');
    const log = await apiRequest(cluster1, { path: '/api/v1/namespaces/default/pods/probe/log?container=curl' });
    t.is(log.body, '200\n');
  } finally {
    await world.stop();
  }
});
