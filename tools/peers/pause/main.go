// The pod sandbox ("pause") process of the local cluster: the first process of every pod, holding the pod's
// namespaces. It does what Kubernetes' pause does: sleeps until SIGINT/SIGTERM and reaps any child it
// inherits. The local cluster has no registry to pull registry.k8s.io/pause from, so tools/cluster builds an
// image around this binary (static, no libc).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 {
		os.Stderr.WriteString("pause: warning: not running as PID 1\n")
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
