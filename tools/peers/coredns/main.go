// The CoreDNS peer: CoreDNS built with only the plugins a test cluster's DNS needs (cluster names from the
// kubernetes plugin, health/ready probes, errors, log, cache, bind, loadbalance). The full CoreDNS binary
// links every cloud provider's SDK; this main links the same server and plugins, nothing else.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
