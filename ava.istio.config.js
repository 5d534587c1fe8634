// The Istio oracle's tests (npm run test:istio): scenarios run through meshfed against emulated clusters, then
// judged by Istio's own translator and Envoy (test/istio), and compared with the data-path model. Kept out of
// `npm test`: they need Go and Envoy, and take minutes.
export default {
  files: ['test/istio/**/*.test.ts'],
  extensions: { ts: 'module' },
  // TypeScript: see test/support/typescript/register.mjs.
  require: ['./test/support/typescript/register.mjs'],
  workerThreads: false,
  timeout: '10m',
  concurrency: 2,
  // Messages must not depend on the machine's locale.
  environmentVariables: { LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
};
