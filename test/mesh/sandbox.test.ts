/**
 * The sandbox uses the model: a user who creates a curl pod with kubectl in the sandbox's cluster1 and reads its
 * logs with kubectl logs sees the real outcome of the request.
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const exec = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));

test('kubectl run + kubectl logs in the sandbox show what curl really got', async (t) => {
  const sandbox = spawn(process.execPath, ['--import', 'tsx', 'scripts/sandbox.ts'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const kubeconfig = await new Promise<string>((resolve, reject) => {
      let out = '';
      sandbox.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^export KUBECONFIG=(.+)\n/.exec(out);
        if (m) resolve(m[1]!);
      });
      sandbox.on('exit', (code) => reject(new Error(`sandbox exited with ${code}`)));
    });
    const kubectl = (...args: string[]) => exec('kubectl', ['--kubeconfig', kubeconfig, '--context', 'cluster1', ...args]);
    const exitCodeOf = async (pod: string): Promise<string> => {
      for (let i = 0; i < 400; i++) {
        const { stdout } = await kubectl('get', 'pod', pod, '-o', `jsonpath={.status.containerStatuses[?(@.name=="${pod}")].state.terminated.exitCode}`);
        if (stdout !== '') return stdout;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${pod} did not finish`);
    };
    await kubectl('run', 'probe', '--image=curlimages/curl:8.11.1', '--restart=Never', '--', 'curl', '-sS', '-w', '\\n%{http_code}\\n', 'http://reviews:9080/reviews/0');
    t.is(await exitCodeOf('probe'), '0');
    const { stdout } = await kubectl('logs', 'probe');
    const [body, status] = stdout.trimEnd().split('\n');
    t.is(status, '200');
    const reviews = JSON.parse(body!) as { podname: string; reviews: Array<Record<string, unknown>> };
    t.regex(reviews.podname, /^reviews-v1-/);
    t.false(reviews.reviews.some((r) => 'rating' in r), 'reviews v1 shows no stars');

    await kubectl('run', 'remote', '--image=curlimages/curl:8.11.1', '--restart=Never', '--', 'curl', '-sS', '-m', '5', 'http://myreviews.bookinfo:9080/reviews/0');
    t.is(await exitCodeOf('remote'), '6', 'cluster2\'s service is not a name in cluster1 until it is imported');
    t.is((await kubectl('logs', 'remote')).stdout, 'curl: (6) Could not resolve host: myreviews.bookinfo\n');
  } finally {
    if (sandbox.exitCode === null && sandbox.signalCode === null) {
      const exited = new Promise((r) => sandbox.once('exit', r));
      sandbox.kill('SIGTERM');
      await exited;
    }
  }
});
