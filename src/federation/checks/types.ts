/**
 * What `verify` checks run over (snapshots of both clusters, read once) and what they return (outcomes, then
 * results). Plain data: gathering is in src/kube/verify-gather.ts, printing in src/ui/checks.ts.
 */
import type { KubeObject } from '../model.js';
import type { ImportRecord } from '../records.js';
import type { CheckCategory, CheckLevel } from './catalogue.js';

/** The outcome of one check on one object: passed, not run (and why), or failed (with what to do). */
export type Outcome =
  | { status: 'ok'; note?: string }
  | { status: 'skip'; reason: string }
  | { status: 'fail'; message: string; hint: string };

/** One line of the report: a catalogue code, the object it is about, and the outcome. */
export interface CheckResult {
  code: string;
  level: CheckLevel;
  category: CheckCategory;
  /** The catalogue description (present tense). */
  description: string;
  /** The object the finding is about, as `Kind namespace/name` (or a context, a certificate…); absent for global checks. */
  object?: string;
  outcome: Outcome;
  /** `docs/checks.md#mf0206`. */
  docs: string;
}

/** What verify learns about a mesh. */
export interface MeshFacts {
  /** Istio version from istiod's image; undefined when no istiod was found (see `problem`). */
  istioVersion?: string;
  /** Mesh trust domain; `cluster.local` when the mesh config does not set one. */
  trustDomain: string;
  trustDomainAliases: string[];
  /** istiod runs with `PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true` (its sidecars accept every trust domain of the root). */
  skipValidateTrustDomain?: boolean;
  /** The mesh root namespace (`rootNamespace` of the mesh config; default `istio-system`): its policies apply mesh-wide. */
  rootNamespace?: string;
  /** `defaultServiceExportTo` of the mesh config, when set. */
  defaultServiceExportTo?: string[];
  /** PEM of the mesh root CA (`istio-ca-root-cert`), when readable. */
  rootCaPem?: string;
  /** Why the Istio facts are incomplete, in the user's terms. */
  problem?: string;
}

/** One cluster as the checks see it. */
export interface SideSnapshot {
  /** kubeconfig context name. */
  context: string;
  mesh: MeshFacts;
  /**
   * Objects read from the cluster: every meshfed-managed object in the namespaces involved, and the objects
   * they refer to (Services, pods, Namespaces, gateway Services and pods). Secrets are included because the
   * checks inspect certificates; their data is never printed.
   */
  objects: KubeObject[];
  /**
   * Namespaces of meshfed's where the user may not list Secrets (the viewer role reads none): the gateways'
   * certificates there are read from the ConfigMaps that publish them, and what only a Secret shows (that its key
   * matches its certificate) is skipped. Default none.
   */
  unreadableSecrets?: string[];
}

/** The provider side: read, not asked for (no `--from`), or not reachable. */
export type ProviderSide =
  | { status: 'present'; snapshot: SideSnapshot }
  /** Not read: no `--from`, and no other context of the kubeconfig (`searched`) is the provider's cluster. */
  | { status: 'absent'; searched?: string[] }
  | { status: 'unreachable'; context: string; message: string };

/** Everything the static checks need. */
export interface VerifySnapshot {
  /** The clock for certificate validity. */
  now: Date;
  consumer: SideSnapshot;
  /** Namespace of the import record (meshfed's home namespace in the consumer cluster). */
  consumerHome: string;
  /** The import being verified, from its record in the consumer cluster. */
  record: ImportRecord;
  provider: ProviderSide;
}
