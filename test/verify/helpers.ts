/**
 * Helpers for the end-to-end tests of `verify`: federations set up with the real export and import commands in
 * emulated clusters carrying the data-path model, verify run as the built CLI, and single faults made (and undone)
 * directly in the emulated clusters.
 */
import type { ExecutionContext } from 'ava';
import type { KubeObject } from '../support/emulator/index.js';
import type { CliOptions } from '../support/cli.js';
import type { FederationWorld } from '../support/federation.js';

/** A parsed `verify -o json` run. */
export interface VerifyRun {
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  report: {
    ok: boolean;
    summary: { passed: number; warnings: number; errors: number; skipped: number };
    checks: Array<{ code: string; level: string; status: 'ok' | 'fail' | 'skip'; object: string | null; message: string | null; hint: string | null; reason: string | null; category: string }>;
    probe: { pod: string; ending: string; httpStatus: number | null; exitCode: number | null; answered: boolean | null; kept: boolean } | null;
  };
}

/** Runs `kubectl meshfed verify <args> -o json` and parses the report (stdout must be JSON whatever the exit code). */
export async function verifyJson(fed: FederationWorld, args: string[], options?: CliOptions): Promise<VerifyRun> {
  const result = await fed.run(['verify', ...args, '-o', 'json'], options);
  let report: VerifyRun['report'];
  try {
    report = JSON.parse(result.stdout) as VerifyRun['report'];
  } catch {
    throw new Error(`verify printed no JSON report (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { code: result.code, stdout: result.stdout, stderr: result.stderr, durationMs: result.durationMs, report };
}

/** The failing checks of a report as (code, object) pairs, warnings included. */
export function failing(run: VerifyRun): Array<[string, string | null]> {
  return run.report.checks.filter((c) => c.status === 'fail').map((c) => [c.code, c.object]);
}

/** The failing codes of a report, sorted and unique. */
export function failingCodes(run: VerifyRun): string[] {
  return [...new Set(failing(run).map(([code]) => code))].sort();
}

/** Probe pods (`meshfed.io/role=probe`) left in a cluster. */
export function probePods(fed: FederationWorld, cluster: string): string[] {
  return fed.world.cluster(cluster).list('v1', 'Pod')
    .filter((p) => p.metadata.labels?.['meshfed.io/role'] === 'probe')
    .map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
}

function clean(object: KubeObject): KubeObject {
  const { resourceVersion: _rv, uid: _uid, managedFields: _mf, creationTimestamp: _ct, generation: _g, ...metadata } = object.metadata;
  const { status: _status, ...rest } = object;
  return { ...rest, metadata } as KubeObject;
}

/**
 * Replaces an object by a changed copy (delete, then create) and returns how to put the original back. `change`
 * edits the copy in place; returning null deletes the object instead.
 */
export async function breakObject(
  fed: FederationWorld, cluster: string, ref: [apiVersion: string, kind: string, namespace: string | undefined, name: string],
  change: (copy: KubeObject) => void | null,
): Promise<() => Promise<void>> {
  const c = fed.world.cluster(cluster);
  const original = c.get(...ref);
  if (!original) throw new Error(`no ${ref.join(' ')} in ${cluster}`);
  const copy = structuredClone(clean(original));
  const result = change(copy);
  c.delete(...ref);
  if (result !== null) c.create(copy);
  await fed.world.waitIdle();
  return async () => {
    c.delete(...ref);
    c.create(clean(original));
    await fed.world.waitIdle();
  };
}

/** Asserts that every expected (code, object) pair failed; object null means "any object". */
export function assertFails(t: ExecutionContext, run: VerifyRun, expected: Array<[string, string | null]>): void {
  const found = failing(run);
  for (const [code, object] of expected) {
    t.true(found.some(([c, o]) => c === code && (object === null || o === object)), `${code}${object ? ` on ${object}` : ''} fails; failing: ${JSON.stringify(found)}`);
  }
}

