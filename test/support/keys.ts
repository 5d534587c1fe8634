/**
 * Reused RSA keys for tests that plan with the pure core. Generating a 2048-bit key costs 0.1–0.5 s of CPU, and the
 * planners' tests make hundreds of keys, so importing this module makes the core's `generateOnDemand` (the key
 * source of a planner given none, and of the mesh model's certificates) hand out keys that earlier test processes
 * generated: each key at most once per process, so keys still differ wherever a test compares them. When none is
 * left, a key is generated as before, and kept for the next processes when this one exits. Import it for its effect
 * (`import '../support/keys.js'`) in tests of plans, never in tests of key generation.
 *
 * The keys live in the temporary directory (no private key is kept in the repository); the first run of a machine
 * costs what it did without them.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_KEY_BITS, generateOnDemand } from '../../src/pki/index.js';

/** Keys kept at most: more than the most key-hungry test file takes. */
const KEPT_AT_MOST = 400;
// One file per user: keys another user left are not taken.
const KEY_FILE = join(tmpdir(), `meshfed-test-keys-rsa${DEFAULT_KEY_BITS}-${process.getuid?.() ?? 'user'}.pem`);
const PEM = /-----BEGIN PRIVATE KEY-----\n[\s\S]+?\n-----END PRIVATE KEY-----\n/g;

function readKept(): string[] {
  try {
    return readFileSync(KEY_FILE, 'utf8').match(PEM) ?? [];
  } catch {
    return [];
  }
}

const kept = readKept();
const generated: string[] = [];
let next = 0;
const generateFresh = generateOnDemand.take.bind(generateOnDemand);

generateOnDemand.take = (bits): KeyObject => {
  if (bits !== DEFAULT_KEY_BITS) return generateFresh(bits);
  const pem = kept[next];
  if (pem !== undefined) {
    next += 1;
    return createPrivateKey(pem);
  }
  const key = generateFresh(bits);
  generated.push(key.export({ type: 'pkcs8', format: 'pem' }).toString());
  return key;
};

process.on('exit', () => {
  const room = KEPT_AT_MOST - readKept().length;
  if (room <= 0 || generated.length === 0) return;
  try {
    // One append of whole keys: a reader sees complete keys only (it takes those matching PEM).
    appendFileSync(KEY_FILE, generated.slice(0, room).join(''), { mode: 0o600 });
  } catch {
    // Keys not kept: the next process generates its own.
  }
});
