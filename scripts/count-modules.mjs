// Preload (`node --import ./scripts/count-modules.mjs …`) that appends the path of every JavaScript module the process
// loads (ES modules through a load hook, CommonJS through Module#_compile) to the file named by $MODULE_LOG, one per
// line; `npm run bench` counts the distinct lines.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';

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
}
