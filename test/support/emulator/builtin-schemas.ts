/**
 * Field lists of the built-in kinds users and the plugin write, as structural schemas, so that unknown fields
 * in them are caught as a real server catches them (`strict decoding error: unknown field "spec.prots"` with
 * `fieldValidation=Strict`, pruned with a warning otherwise). Only field names are checked: what is not listed
 * in depth (affinity, probes, volumes…) accepts anything, so a valid manifest is never refused.
 */
import type { JSONSchemaProps } from '../crd-schema.js';

const any: JSONSchemaProps = { 'x-kubernetes-preserve-unknown-fields': true };

function obj(properties: Record<string, JSONSchemaProps>): JSONSchemaProps {
  return { type: 'object', properties };
}

function arr(items: JSONSchemaProps): JSONSchemaProps {
  return { type: 'array', items };
}

function anyOf(names: string[]): Record<string, JSONSchemaProps> {
  return Object.fromEntries(names.map((n) => [n, any]));
}

const containerPort = obj(anyOf(['name', 'hostPort', 'containerPort', 'protocol', 'hostIP']));
const envVar = obj(anyOf(['name', 'value', 'valueFrom']));

const container = obj({
  ...anyOf([
    'name', 'image', 'command', 'args', 'workingDir', 'envFrom', 'resources', 'resizePolicy', 'restartPolicy', 'volumeMounts',
    'volumeDevices', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath',
    'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty',
  ]),
  ports: arr(containerPort),
  env: arr(envVar),
});

const podSpec = obj({
  ...anyOf([
    'volumes', 'ephemeralContainers', 'restartPolicy', 'terminationGracePeriodSeconds', 'activeDeadlineSeconds', 'dnsPolicy',
    'nodeSelector', 'serviceAccountName', 'serviceAccount', 'automountServiceAccountToken', 'nodeName', 'hostNetwork', 'hostPID',
    'hostIPC', 'shareProcessNamespace', 'securityContext', 'imagePullSecrets', 'hostname', 'subdomain', 'affinity', 'schedulerName',
    'tolerations', 'hostAliases', 'priorityClassName', 'priority', 'dnsConfig', 'readinessGates', 'runtimeClassName',
    'enableServiceLinks', 'preemptionPolicy', 'overhead', 'topologySpreadConstraints', 'setHostnameAsFQDN', 'os', 'hostUsers',
    'schedulingGates', 'resourceClaims', 'resources',
  ]),
  containers: arr(container),
  initContainers: arr(container),
});

const policyRule = obj(anyOf(['apiGroups', 'resources', 'verbs', 'resourceNames', 'nonResourceURLs']));
const binding = obj({
  subjects: arr(obj(anyOf(['kind', 'apiGroup', 'name', 'namespace']))),
  roleRef: obj(anyOf(['apiGroup', 'kind', 'name'])),
});

/** Schemas by `group/Kind` (core group empty). Kinds without one are not checked for unknown fields. */
export const BUILTIN_SCHEMAS: Readonly<Record<string, JSONSchemaProps>> = {
  '/Service': obj({
    spec: obj({
      ...anyOf([
        'selector', 'clusterIP', 'clusterIPs', 'type', 'externalIPs', 'sessionAffinity', 'loadBalancerIP', 'loadBalancerSourceRanges',
        'externalName', 'externalTrafficPolicy', 'healthCheckNodePort', 'publishNotReadyAddresses', 'sessionAffinityConfig',
        'ipFamilies', 'ipFamilyPolicy', 'allocateLoadBalancerNodePorts', 'loadBalancerClass', 'internalTrafficPolicy', 'trafficDistribution',
      ]),
      ports: arr(obj(anyOf(['name', 'protocol', 'appProtocol', 'port', 'targetPort', 'nodePort']))),
    }),
    status: any,
  }),
  '/Secret': obj(anyOf(['data', 'stringData', 'type', 'immutable'])),
  '/ConfigMap': obj(anyOf(['data', 'binaryData', 'immutable'])),
  '/ServiceAccount': obj(anyOf(['secrets', 'imagePullSecrets', 'automountServiceAccountToken'])),
  '/Namespace': obj({ spec: obj(anyOf(['finalizers'])), status: any }),
  '/Pod': obj({ spec: podSpec, status: any }),
  'apps/Deployment': obj({
    spec: obj({
      ...anyOf(['replicas', 'selector', 'strategy', 'minReadySeconds', 'revisionHistoryLimit', 'paused', 'progressDeadlineSeconds']),
      template: obj({ metadata: any, spec: podSpec }),
    }),
    status: any,
  }),
  'rbac.authorization.k8s.io/Role': obj({ rules: arr(policyRule) }),
  'rbac.authorization.k8s.io/ClusterRole': obj({ rules: arr(policyRule), aggregationRule: any }),
  'rbac.authorization.k8s.io/RoleBinding': binding,
  'rbac.authorization.k8s.io/ClusterRoleBinding': binding,
};
