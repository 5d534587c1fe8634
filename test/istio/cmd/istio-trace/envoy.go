package main

import (
	"meshfed.test/istio/envoy"
	"meshfed.test/istio/oracle"
)

// The Envoy side of --envoy validate|live: package envoy judges every proxy config with
// `envoy --mode validate` and runs the traced path's gateways as real Envoy processes.
func init() {
	envoyHooks = func(mode string) (oracle.ProxyConfigJudge, oracle.LiveJudge, error) {
		j, err := envoy.NewValidateJudge()
		if err != nil {
			return nil, nil, err
		}
		if mode == "live" {
			return j, &envoy.LiveRunner{}, nil
		}
		return j, nil, nil
	}
}
