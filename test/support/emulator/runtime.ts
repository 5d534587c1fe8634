/**
 * The contract between the Kubernetes API emulator and what runs "inside" its pods.
 *
 * The emulator stores objects and simulates controllers and a kubelet; what a container does and prints
 * comes from a {@link ContainerRuntime}. The default runtime runs forever and prints nothing; the mesh
 * data-path model (test/support/mesh) is another runtime that makes curl and TCP probes travel the Istio
 * configuration stored in the emulated clusters.
 *
 * Objects are plain JSON as a real API server would return them (apiVersion, kind, metadata, spec, status).
 * Lookups are by API group and kind and ignore the version: the emulator keeps one stored form per kind, as
 * a real server does, so an object created as networking.istio.io/v1beta1 is found under group
 * 'networking.istio.io', kind 'Gateway'.
 */

/** A stored Kubernetes object. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    creationTimestamp?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Read-only access to one emulated cluster's objects. Returned objects are copies: mutating them changes nothing. */
export interface ClusterView {
  /** The cluster's name, as used for its kubeconfig context. */
  readonly name: string;
  /** All objects of a kind (core group is ''), optionally only those in one namespace. */
  list(group: string, kind: string, namespace?: string): KubeObject[];
  /** One object, or undefined. `namespace` is ignored for cluster-scoped kinds. */
  get(group: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
}

/** All clusters started together (the sandbox or one test's clusters): what "the network" can reach. */
export interface WorldView {
  clusters(): ClusterView[];
  cluster(name: string): ClusterView | undefined;
}

/** One container of a pod being run by the emulated kubelet. */
export interface ContainerRun {
  cluster: ClusterView;
  world: WorldView;
  /** The pod as stored when the container starts (with injected sidecar, if any). */
  pod: KubeObject;
  /** The container spec from the pod: name, image, command, args, env, ports. */
  container: {
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    env?: Array<{ name: string; value?: string }>;
    [key: string]: unknown;
  };
  /** Appends text to this container's log (what `kubectl logs` returns). */
  log(text: string): void;
  /** Aborted when the pod is deleted, or when {@link ContainerRun.stopContainer} stops this container. */
  signal: AbortSignal;
  /**
   * Stops another container of the same pod as if it exited with the given code (default 0). This is how a
   * probe's `curl -X POST localhost:15020/quitquitquit` stops its istio-proxy sidecar so the pod completes.
   */
  stopContainer(name: string, exitCode?: number): void;
}

/**
 * Runs a container. Resolve with the exit code when the container ends; a container that serves forever
 * returns a promise that settles only when `run.signal` aborts (then resolve with 0 or 137 as a kubelet would).
 * Return `undefined` (not a promise) to let the next runtime in the chain handle the container.
 */
export type ContainerRuntime = (run: ContainerRun) => Promise<number> | undefined;

/** A command run in a running container of a pod (`kubectl exec`). */
export interface ContainerExec {
  cluster: ClusterView;
  world: WorldView;
  /** The pod as stored when the command starts. */
  pod: KubeObject;
  /** The container's name. */
  container: string;
  /** The command and its arguments, as given to `kubectl exec … -- <command>`. */
  command: string[];
  /** What was written to stdin (`kubectl exec -i`), or undefined without stdin. */
  stdin?: string;
}

/** The outcome of an exec'd command. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Runs an exec'd command. Return `undefined` (not a promise) to let the next handler try; when no handler
 * takes a command, the emulator answers as a container without that executable would.
 */
export type ExecHandler = (exec: ContainerExec) => Promise<ExecResult> | undefined;
