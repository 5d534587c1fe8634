// Preload (`node --import ./scripts/count-modules.mjs …`) that appends the path of every JavaScript file the process
// loads to the file named by $MODULE_LOG, one per line: ES modules through a load hook, CommonJS through
// Module#_compile, and scripts compiled with node:vm (bin/kubectl-meshfed runs the bundle that way, the bundle its
// assets). `npm run bench` counts the distinct lines.
import { appendFileSync } from 'node:fs';
import Module, { register, syncBuiltinESMExports } from 'node:module';
import vm from 'node:vm';

const log = process.env.MODULE_LOG;
if (log) {
  register(`data:text/javascript,${encodeURIComponent(`
    import { appendFileSync } from 'node:fs';
    import { fileURLToPath } from 'node:url';
    export async function load(url, context, next) {
      if (url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, fileURLToPath(url) + '\\n');
      return next(url, context);
    }
  `)}`);
  const compile = Module.prototype._compile;
  Module.prototype._compile = function (content, filename) {
    appendFileSync(log, `${filename}\n`);
    return compile.call(this, content, filename);
  };
  const { Script, compileFunction } = vm;
  vm.Script = class extends Script {
    constructor(code, options) {
      if (options?.filename) appendFileSync(log, `${options.filename}\n`);
      super(code, options);
    }
  };
  vm.compileFunction = (code, params, options) => {
    if (options?.filename) appendFileSync(log, `${options.filename}\n`);
    return compileFunction(code, params, options);
  };
  syncBuiltinESMExports();
}
