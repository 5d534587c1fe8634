/**
 * The Istio oracle's command line: traces one call through a directory of cluster dumps with Istio's own translator
 * (and Envoy), hop by hop.
 *
 *   npm run -s istio-trace -- --dir <dir> --from <cluster>/<namespace>/<pod> --url http://name.ns:port/path [--json] [--envoy off|validate|live]
 *
 * Builds the Go program (test/istio/cmd/istio-trace) into test/istio/bin/ first when it is missing or older than
 * any .go file, go.mod or go.sum of test/istio, then runs it with the arguments and exits with its exit code
 * (0 reached, 1 refused, 2 usage, 3 cannot judge). See test/istio/README.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ORACLE_MODULE = fileURLToPath(new URL('../test/istio/', import.meta.url));
export const ORACLE_BINARY = join(ORACLE_MODULE, 'bin', 'istio-trace');

/** Newest modification time (ms) of the Go sources of the oracle module (bin/ and testdata/ left out). */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'bin' || entry.name === 'testdata' || entry.name.startsWith('.')) continue;
      newest = Math.max(newest, newestSource(path));
    } else if (entry.name.endsWith('.go') || entry.name === 'go.mod' || entry.name === 'go.sum') {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * Builds the oracle binary unless it is newer than every source; returns its path. Throws with go's output when
 * the build fails.
 */
export function ensureOracleBuilt({ log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (existsSync(ORACLE_BINARY) && statSync(ORACLE_BINARY).mtimeMs >= newestSource(ORACLE_MODULE)) return ORACLE_BINARY;
  log('istio-trace: building the Istio oracle (go build ./cmd/istio-trace; the first build takes minutes)');
  const started = Date.now();
  // Built beside the binary, then renamed over it: two processes building at once never run a half-written file.
  const partial = `${ORACLE_BINARY}.${process.pid}.partial`;
  const built = spawnSync('go', ['build', '-o', partial, './cmd/istio-trace'], { cwd: ORACLE_MODULE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (built.error) throw new Error(`cannot run go (is Go installed and on PATH?): ${built.error.message}`);
  if (built.status !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`go build ./cmd/istio-trace failed in ${ORACLE_MODULE}:\n${built.stdout}${built.stderr}`);
  }
  renameSync(partial, ORACLE_BINARY);
  log(`istio-trace: built ${ORACLE_BINARY} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return ORACLE_BINARY;
}

async function main() {
  let binary;
  try {
    binary = ensureOracleBuilt();
  } catch (err) {
    process.stderr.write(`istio-trace: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(3);
  }
  const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    process.stderr.write(`istio-trace: cannot run ${binary}: ${err.message}\n`);
    process.exit(3);
  });
  child.on('close', (code, signal) => process.exit(code ?? (signal ? 128 + 15 : 1)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
