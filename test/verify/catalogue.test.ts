/**
 * The catalogue tests itself: codes unique and well-formed, every check described and hinted, every code documented
 * in docs/checks.md and every documented code in the catalogue, every check of the list in the catalogue; the links the
 * plugin prints are the docs of its own version (a tag of the repository), at anchors that exist.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { CATALOGUE, CATEGORIES, docsAnchor, docsUrl, STATIC_CHECKS } from '../../src/federation/checks/index.js';
import { MAIN_SCRIPT, docsBase, pkg } from '../../scripts/esbuild-options.mjs';
import { repoRoot } from '../support/cli.js';

const docs = readFileSync(`${repoRoot}docs/checks.md`, 'utf8');
const entries = [...CATALOGUE.values()];

test('codes are MF + 4 digits, unique, and grouped by category in order', (t) => {
  t.true(entries.length >= 40);
  for (const entry of entries) t.regex(entry.code, /^MF\d{4}$/);
  t.is(new Set(entries.map((e) => e.code)).size, entries.length);
  const order = CATEGORIES.map((c) => c.id);
  const positions = entries.map((e) => order.indexOf(e.category));
  t.false(positions.includes(-1));
  t.deepEqual(positions, [...positions].sort((a, b) => a - b), 'the catalogue lists categories in print order');
});

test('every check has a present-tense description, a message, a hint and a docs anchor', (t) => {
  for (const entry of entries) {
    t.true(entry.description.length > 10, entry.code);
    t.notRegex(entry.description, /\.$/, `${entry.code}: descriptions are phrases, not sentences`);
    t.notRegex(entry.description, /\b(should|must|will)\b/, `${entry.code}: descriptions state what holds`);
    t.true(entry.message.length > 0, entry.code);
    t.true(entry.hint.length > 10, `${entry.code} has a hint`);
    t.is(docsAnchor(entry.code), `docs/checks.md#${entry.code.toLowerCase()}`);
  }
});

test('every code has a section in docs/checks.md and every documented code is in the catalogue', (t) => {
  const documented = [...docs.matchAll(/<a id="(mf\d{4})"><\/a>\n### (MF\d{4}) — (.*)\n/g)];
  const anchors = documented.map((m) => m[1]!);
  t.deepEqual([...new Set(anchors)].length, anchors.length, 'no code documented twice');
  for (const m of documented) t.is(m[1], m[2]!.toLowerCase(), `anchor and heading of ${m[2]} agree`);
  t.deepEqual(new Set(documented.map((m) => m[2])), new Set(entries.map((e) => e.code)));
  for (const m of documented) {
    const entry = CATALOGUE.get(m[2]!)!;
    t.is(m[3], entry.description, `${entry.code}: the docs heading is the catalogue description`);
    const section = docs.slice(m.index!, docs.indexOf('<a id=', m.index! + 10) >>> 0);
    t.regex(section, /\*\*What it means\.\*\*/, `${entry.code} says what it means`);
    t.regex(section, /\*\*How to fix\.\*\*/, `${entry.code} says how to fix it`);
  }
});

test('every static check is in the catalogue, once', (t) => {
  const codes = STATIC_CHECKS.map((c) => c.code);
  t.is(new Set(codes).size, codes.length);
  for (const code of codes) t.truthy(CATALOGUE.get(code), code);
  for (const check of STATIC_CHECKS) for (const required of check.requires ?? []) t.truthy(CATALOGUE.get(required), `${check.code} requires ${required}`);
  const probeCodes = entries.filter((e) => e.category === 'probe').map((e) => e.code);
  t.false(codes.some((c) => probeCodes.includes(c)), 'probe codes come from the probe, not the static list');
});

test('the links the plugin prints are the docs of its version, and the docs exist at those anchors', (t) => {
  // docsBase is what the bundler gives the plugin (scripts/esbuild-options.mjs), from package.json.
  t.is(docsBase, `${pkg.homepage}/blob/v${pkg.version}/`);
  t.regex(docsBase, /^https:\/\/github\.com\/[^/]+\/kubectl-meshfed\/blob\/v\d+\.\d+\.\d+\/$/);
  for (const entry of entries) {
    const url = docsUrl(docsAnchor(entry.code), docsBase);
    t.is(url, `${docsBase}docs/checks.md#${entry.code.toLowerCase()}`);
    // What follows the tag is a path in this repository, and the anchor is in that file.
    const [path, anchor] = url.slice(docsBase.length).split('#') as [string, string];
    t.true(existsSync(`${repoRoot}${path}`), path);
    t.true(readFileSync(`${repoRoot}${path}`, 'utf8').includes(`<a id="${anchor}"></a>`), `${path}#${anchor}`);
  }
});

test('the built plugin prints those links: the bundle carries the versioned docs address', (t) => {
  const bundle = readFileSync(`${repoRoot}dist/${MAIN_SCRIPT}`, 'utf8');
  t.true(bundle.includes(JSON.stringify(docsBase)), 'build first (node scripts/build.mjs): the bundle names the docs of its version');
});
