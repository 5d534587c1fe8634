package oracle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/mesh"
	kubelib "istio.io/istio/pkg/kube"
)

// Cluster is one cluster's state as read from <dir>/<cluster>.yaml.
type Cluster struct {
	Name string
	// Configs are the Istio (and Gateway API) objects, parsed and validated with Istio's own schema.
	Configs []config.Config
	// Objects are the Kubernetes objects handed to Istio's Kubernetes service registry.
	Objects []runtime.Object
	// Rejected lists Istio objects Istio's validation rejects (a real API server with Istio's validating
	// webhook would not hold them); they are left out, as they would be absent from a real cluster.
	Rejected []Problem
	// Skipped lists objects of kinds neither Istio's config store nor its Kubernetes registry read.
	Skipped []string
	// Notes are facts the loader filled in the way the cluster would (EndpointSlices of selector Services).
	Notes []string

	Mesh         *meshconfig.MeshConfig
	IstioVersion string // the istiod image tag the cluster claims ("" if none)

	Namespaces     map[string]*corev1.Namespace
	Services       []*corev1.Service
	Pods           []*corev1.Pod
	EndpointSlices []*discoveryv1.EndpointSlice
	Secrets        map[string]*corev1.Secret // "<ns>/<name>"
	ConfigMaps     map[string]*corev1.ConfigMap
}

// Problem is one object-level problem found while loading.
type Problem struct {
	Cluster string `json:"cluster"`
	Object  string `json:"object"`
	Error   string `json:"error"`
}

// State is every cluster of a directory.
type State struct {
	Dir      string
	Clusters map[string]*Cluster
	Order    []string
}

func isIstioGroup(group string) bool {
	return strings.HasSuffix(group, ".istio.io") || group == "gateway.networking.k8s.io" ||
		group == "gateway.networking.x-k8s.io"
}

// LoadState reads <dir>/*.yaml (and *.yml); each file is one cluster named after the file.
func LoadState(dir string) (*State, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--dir %s: %v", dir, err)
	}
	st := &State{Dir: dir, Clusters: map[string]*Cluster{}}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(n, ".yaml"), ".yml")
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		c, err := LoadCluster(name, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(dir, n), err)
		}
		st.Clusters[name] = c
		st.Order = append(st.Order, name)
	}
	if len(st.Order) == 0 {
		return nil, fmt.Errorf("--dir %s holds no <cluster>.yaml file", dir)
	}
	sort.Strings(st.Order)
	return st, nil
}

// splitDocuments reads a multi-document YAML (or JSON) stream. It is read as YAML 1.2 (go.yaml.in/yaml/v3):
// a dump written by a YAML 1.2 writer leaves strings like `yes` or `on` unquoted, and the API server holds them
// as strings.
func splitDocuments(data []byte) ([]map[string]any, error) {
	var out []map[string]any
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if err == io.EOF {
				break
			}
			return nil, err
		}
		if len(obj) == 0 {
			continue
		}
		if k, _ := obj["kind"].(string); strings.HasSuffix(k, "List") {
			if items, ok := obj["items"].([]any); ok {
				for _, it := range items {
					if m, ok := it.(map[string]any); ok {
						out = append(out, m)
					}
				}
				continue
			}
		}
		out = append(out, obj)
	}
	return out, nil
}

func objRef(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	n, _ := md["name"].(string)
	k, _ := o["kind"].(string)
	if ns != "" {
		return fmt.Sprintf("%s %s/%s", k, ns, n)
	}
	return fmt.Sprintf("%s %s", k, n)
}

// LoadCluster parses one cluster's objects.
func LoadCluster(name string, data []byte) (*Cluster, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Name:       name,
		Namespaces: map[string]*corev1.Namespace{},
		Secrets:    map[string]*corev1.Secret{},
		ConfigMaps: map[string]*corev1.ConfigMap{},
	}
	decode := kubelib.IstioCodec.UniversalDeserializer().Decode
	for _, o := range docs {
		apiVersion, _ := o["apiVersion"].(string)
		kind, _ := o["kind"].(string)
		if apiVersion == "" || kind == "" {
			return nil, fmt.Errorf("an object without apiVersion/kind: %v", objRef(o))
		}
		group := ""
		if i := strings.Index(apiVersion, "/"); i >= 0 {
			group = apiVersion[:i]
		}
		// Istio stores the v1 API as the same protos; everything it reads goes through its config parser,
		// which validates with the schema's validation (the webhook's) like crd.ParseInputs does.
		if isIstioGroup(group) {
			// Drop what an API server adds that Istio's IstioKind does not carry.
			if md, ok := o["metadata"].(map[string]any); ok {
				delete(md, "managedFields")
			}
			y, err := json.Marshal(o) // JSON is YAML: no re-interpretation of scalars
			if err != nil {
				return nil, err
			}
			cfgs, others, err := crd.ParseInputs(string(y))
			if err != nil {
				c.Rejected = append(c.Rejected, Problem{Cluster: name, Object: objRef(o), Error: err.Error()})
				continue
			}
			if len(others) > 0 {
				c.Skipped = append(c.Skipped, objRef(o))
				continue
			}
			for _, cfg := range cfgs {
				if cfg.Namespace == "" {
					cfg.Namespace = "default"
				}
				// istiod's Kubernetes config client stamps the domain suffix on every config; short host
				// names (a DestinationRule's `host: reviews`) resolve against it
				// (pilot/pkg/config/kube/crdclient/client.go sets cfg.Domain = domainSuffix; pilot/pkg/model/config.go
				// ResolveShortnameToFQDN).
				cfg.Domain = "cluster.local"
				c.Configs = append(c.Configs, cfg)
			}
			continue
		}
		j, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		obj, _, err := decode(j, nil, nil)
		if err != nil {
			c.Skipped = append(c.Skipped, objRef(o))
			continue
		}
		switch t := obj.(type) {
		case *corev1.Namespace:
			c.Namespaces[t.Name] = t
		case *corev1.Service:
			c.Services = append(c.Services, t)
		case *corev1.Pod:
			if t.Status.PodIP != "" && len(t.Status.PodIPs) == 0 {
				t.Status.PodIPs = []corev1.PodIP{{IP: t.Status.PodIP}}
			}
			c.Pods = append(c.Pods, t)
		case *discoveryv1.EndpointSlice:
			c.EndpointSlices = append(c.EndpointSlices, t)
		case *corev1.Secret:
			// A Secret as a manifest may carry stringData; the API server merges it into data.
			for k, v := range t.StringData {
				if t.Data == nil {
					t.Data = map[string][]byte{}
				}
				t.Data[k] = []byte(v)
			}
			c.Secrets[t.Namespace+"/"+t.Name] = t
		case *corev1.ConfigMap:
			c.ConfigMaps[t.Namespace+"/"+t.Name] = t
		case *appsv1.Deployment:
			if t.Namespace == "istio-system" && strings.HasPrefix(t.Name, "istiod") {
				for _, ct := range t.Spec.Template.Spec.Containers {
					if i := strings.LastIndex(ct.Image, ":"); i >= 0 && strings.Contains(ct.Image, "pilot") {
						c.IstioVersion = ct.Image[i+1:]
					}
				}
			}
		}
		c.Objects = append(c.Objects, obj)
	}
	// Namespaces the objects live in exist in a real cluster even if the dump left them out.
	for _, p := range c.Pods {
		if _, ok := c.Namespaces[p.Namespace]; !ok {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Namespace}}
			c.Namespaces[p.Namespace] = ns
			c.Objects = append(c.Objects, ns)
		}
	}
	// A pod the injector would have given a sidecar (its namespace is labelled for injection) but whose dump
	// shows no istio-proxy container: the sidecar injection template also labels it
	// security.istio.io/tlsMode=istio (manifests/charts/istio-control/istio-discovery/files/
	// injection-template.yaml), which makes Istio's endpoints carry the mTLS transport-socket match.
	for _, p := range c.Pods {
		if proxy, _ := hasProxyContainer(p); proxy || c.PodProxyKind(p) != Sidecar {
			continue
		}
		if _, ok := p.Labels["security.istio.io/tlsMode"]; !ok {
			if p.Labels == nil {
				p.Labels = map[string]string{}
			}
			p.Labels["security.istio.io/tlsMode"] = "istio"
			c.Notes = append(c.Notes, fmt.Sprintf("pod %s/%s: sidecar injected by its namespace's label; labelled security.istio.io/tlsMode=istio as the injector does", p.Namespace, p.Name))
		}
	}
	c.synthesizeEndpointSlices()

	c.Mesh = mesh.DefaultMeshConfig()
	if cm, ok := c.ConfigMaps["istio-system/istio"]; ok && cm.Data["mesh"] != "" {
		m, err := mesh.ApplyMeshConfigDefaults(cm.Data["mesh"])
		if err != nil {
			return nil, fmt.Errorf("ConfigMap istio-system/istio key mesh: %v", err)
		}
		c.Mesh = m
	}
	return c, nil
}

// PodReady is the pod's Ready condition, as the EndpointSlice controller reads it. A dump without
// conditions counts a Running pod as ready.
func PodReady(p *corev1.Pod) bool {
	if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
		return false
	}
	for _, cd := range p.Status.Conditions {
		if cd.Type == corev1.PodReady {
			return cd.Status == corev1.ConditionTrue
		}
	}
	return p.Status.Phase == corev1.PodRunning
}

func selectorMatches(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ServicePods are the pods a Service selects (all, ready or not).
func (c *Cluster) ServicePods(svc *corev1.Service) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range c.Pods {
		if p.Namespace == svc.Namespace && selectorMatches(svc.Spec.Selector, p.Labels) {
			out = append(out, p)
		}
	}
	return out
}

// TargetPort resolves a Service port's targetPort on a pod (a named port looks up the containers' ports).
func TargetPort(sp corev1.ServicePort, p *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, true
		}
		return tp.IntVal, true
	}
	if tp.StrVal == "" {
		return sp.Port, true
	}
	if p == nil {
		return 0, false
	}
	for _, ct := range p.Spec.Containers {
		for _, cp := range ct.Ports {
			if cp.Name == tp.StrVal {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// synthesizeEndpointSlices adds, for every Service with a selector and no EndpointSlice in the dump, the
// EndpointSlice Kubernetes' EndpointSlice controller keeps for it (Istio reads endpoints only from
// EndpointSlices): the selected pods' IPs, ready from their Ready condition, the resolved target ports.
func (c *Cluster) synthesizeEndpointSlices() {
	has := map[string]bool{}
	for _, es := range c.EndpointSlices {
		has[es.Namespace+"/"+es.Labels[discoveryv1.LabelServiceName]] = true
	}
	for _, svc := range c.Services {
		if len(svc.Spec.Selector) == 0 || has[svc.Namespace+"/"+svc.Name] {
			continue
		}
		pods := c.ServicePods(svc)
		es := &discoveryv1.EndpointSlice{
			TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      svc.Name + "-oracle",
				Namespace: svc.Namespace,
				Labels:    map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		var samplePod *corev1.Pod
		if len(pods) > 0 {
			samplePod = pods[0]
		}
		for _, sp := range svc.Spec.Ports {
			tp, ok := TargetPort(sp, samplePod)
			if !ok {
				continue
			}
			name, proto, port := sp.Name, sp.Protocol, tp
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port, AppProtocol: sp.AppProtocol})
		}
		for _, p := range pods {
			if p.Status.PodIP == "" {
				continue
			}
			ready := PodReady(p)
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{p.Status.PodIP},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
			})
		}
		c.EndpointSlices = append(c.EndpointSlices, es)
		c.Objects = append(c.Objects, es)
		c.Notes = append(c.Notes, fmt.Sprintf("EndpointSlice of Service %s/%s derived from its pods (none in the dump)", svc.Namespace, svc.Name))
	}
}

// Secret returns a Secret's data, decoding base64 strings left as such.
func (c *Cluster) Secret(ns, name string) (map[string][]byte, bool) {
	s, ok := c.Secrets[ns+"/"+name]
	if !ok {
		return nil, false
	}
	return s.Data, true
}

func decodeMaybeBase64(b []byte) []byte {
	if bytes.Contains(b, []byte("-----BEGIN")) {
		return b
	}
	if d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil {
		return d
	}
	return b
}
