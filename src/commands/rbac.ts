import { UsageError } from '../errors.js';
import { RBAC_ROLES, rbacObjects, type RbacRole, type RbacSubject } from '../federation/rbac.js';
import { formatObjects } from '../ui/format.js';
import type { GlobalArgs, Session } from './session.js';
import { withSession } from './run.js';
import type { CommandBody } from './index.js';

interface RbacArgs extends GlobalArgs {
  role: RbacRole;
  user?: string;
  group?: string;
  'service-account'?: string;
  'istio-namespace': string;
  'gateway-namespace'?: string;
  probe: boolean;
}

/** The one subject of the bindings, from exactly one of --user, --group and --service-account. */
function subjectOf(args: RbacArgs): RbacSubject {
  const given = [args.user !== undefined && '--user', args.group !== undefined && '--group', args['service-account'] !== undefined && '--service-account'].filter(Boolean);
  if (given.length !== 1) {
    throw new UsageError(given.length ? `give one of ${given.join(', ')}, not several` : 'say whom the role is for: --user, --group or --service-account', {
      hint: 'e.g. kubectl meshfed rbac --role provider --user jane@example.com | kubectl apply -f -',
    });
  }
  if (args.user !== undefined) return { kind: 'User', name: nonEmpty(args.user, '--user') };
  if (args.group !== undefined) return { kind: 'Group', name: nonEmpty(args.group, '--group') };
  const match = /^([^/\s]+)\/([^/\s]+)$/.exec(args['service-account']!);
  if (!match) throw new UsageError(`invalid --service-account "${args['service-account']}": expected <namespace>/<name>`);
  return { kind: 'ServiceAccount', namespace: match[1]!, name: match[2]! };
}

function nonEmpty(value: string, flag: string): string {
  if (!value.trim()) throw new UsageError(`${flag} needs a name`);
  return value;
}

async function printRbac(session: Session, args: RbacArgs): Promise<void> {
  const format = session.outputFormat(['json', 'yaml'] as const) ?? 'yaml';
  const objects = rbacObjects(args.role, {
    subject: subjectOf(args),
    ...(args.namespace ? { namespaces: args.namespace.split(',').map((n) => n.trim()).filter(Boolean) } : {}),
    istioNamespace: args['istio-namespace'],
    ...(args['gateway-namespace'] ? { gatewayNamespace: args['gateway-namespace'] } : {}),
    ...(args.probe ? {} : { noProbe: true }),
  });
  session.ui.data(formatObjects(objects, format));
}

/** `kubectl meshfed rbac`: prints the least-privilege RBAC of a role (docs/rbac.md) for a cluster admin to apply. */
export const rbacCommand: CommandBody<RbacArgs> = {
  builder: (yargs) =>
    yargs
      .option('role', { type: 'string', choices: RBAC_ROLES, demandOption: true, describe: 'provider (export, admit, revoke, unexport), consumer (import, unimport) or viewer (status, verify)' })
      .option('user', { type: 'string', describe: 'Bind the role to this user' })
      .option('group', { type: 'string', describe: 'Bind the role to this group' })
      .option('service-account', { type: 'string', describe: 'Bind the role to this service account (<namespace>/<name>)' })
      .option('namespace', { alias: 'n', type: 'string', describe: 'Grant the rules about applications in these namespaces only (comma-separated); default every namespace' })
      .option('istio-namespace', { type: 'string', default: 'istio-system', describe: 'Namespace of istiod and the mesh config' })
      .option('gateway-namespace', { type: 'string', describe: 'Namespace of an existing gateway meshfed uses (--gateway-selector): meshfed writes there too' })
      .option('probe', { type: 'boolean', default: true, describe: 'viewer: include verify\'s probe pod (--no-probe: status and verify --no-probe only)' })
      .example('kubectl meshfed rbac --role provider --user jane@example.com | kubectl apply -f -', 'Let jane export services of this cluster')
      .example('kubectl meshfed rbac --role viewer --group sre -n shop', 'Let the sre group run status and verify for imports in namespace shop'),
  handler: withSession(printRbac),
};
