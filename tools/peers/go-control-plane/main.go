// gcp: a reference xDS server on go-control-plane v0.14.0, serving the same static-resources file that
// `trellis control-plane --static-resources FILE` serves, so that benchmarks can compare the two side by side.
//
//	gcp --resources FILE [--port 0] [--cache snapshot|linear]
//
// FILE is JSON, {"resources": [ <proto3 JSON of an Any: "@type" plus the message's fields>, ... ]}, as
// bench/fixture.ts writes it; a resource may instead be {"typeUrl": …, "binary": <base64 of the message>}
// (bench/mesh-baseline.ts writes a translated sidecar's config so): its nested Anys (filters' typed_config)
// stay bytes, so their types need not be registered here. The file is watched (its directory, so an atomic
// rename is seen); every change re-reads it and publishes a new version:
//   - snapshot: one SnapshotCache snapshot shared by every node (constant node hash); each type's version is
//     the generation in which one of its resources last changed;
//   - linear: one LinearCache per type (a MuxCache by type URL), updated with only the resources that changed.
//
// ADS state of the world (StreamAggregatedResources) and delta (DeltaAggregatedResources) on 127.0.0.1:PORT.
// Events on stdout, one JSON object a line ("at" is epoch ms):
//
//	{"event":"listening","xdsPort":…,"pid":…}
//	{"event":"loaded","at":…,"parsedAt":…,"generation":…,"resources":…,"changed":…}
//	                                         a new version was published ("parsedAt": the file was read and parsed)
//	{"event":"stats","rss":…,"hwm":…,"cpuMs":…}                           answer to "stats" on stdin (/proc/self)
//
// A file that fails to parse keeps the last good version (the error goes to stderr). SIGTERM/SIGINT stop it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	// Every message type a static-resources file may hold must be registered for protojson.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// allNodes makes every node share one snapshot: the file is the same for every proxy.
type allNodes struct{}

func (allNodes) ID(*core.Node) string { return "all" }

const snapshotKey = "all"

var servedTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

type loaded struct {
	byType map[string]map[string]types.Resource
	bytes  map[string][]byte // type/name -> deterministic encoding, to find what changed
	count  int
}

func readResources(file string) (*loaded, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Resources []json.RawMessage `json:"resources"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := &loaded{byType: map[string]map[string]types.Resource{}, bytes: map[string][]byte{}}
	for _, t := range servedTypes {
		out.byType[t] = map[string]types.Resource{}
	}
	for i, raw := range doc.Resources {
		var a anypb.Any
		var bin struct {
			TypeURL string `json:"typeUrl"`
			Binary  []byte `json:"binary"`
		}
		if err := json.Unmarshal(raw, &bin); err == nil && bin.Binary != nil {
			a.TypeUrl, a.Value = bin.TypeURL, bin.Binary
		} else if err := protojson.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("%s: resource %d: %w", file, i, err)
		}
		msg, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("%s: resource %d: %w", file, i, err)
		}
		res, ok := msg.(types.Resource)
		if !ok {
			return nil, fmt.Errorf("%s: resource %d: %s is not an xDS resource", file, i, a.TypeUrl)
		}
		byName, ok := out.byType[a.TypeUrl]
		if !ok {
			return nil, fmt.Errorf("%s: resource %d: type %s is not served", file, i, a.TypeUrl)
		}
		name := cache.GetResourceName(res)
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("%s: resource %d: duplicate %s %q", file, i, a.TypeUrl, name)
		}
		byName[name] = res
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(res)
		if err != nil {
			return nil, err
		}
		out.bytes[a.TypeUrl+"/"+name] = b
		out.count++
	}
	return out, nil
}

type publisher struct {
	mode       string
	snapshots  cache.SnapshotCache
	linear     map[string]*cache.LinearCache
	mu         sync.Mutex
	generation int
	last       *loaded
	// typeVersion: the version of each type in the SnapshotCache (the generation of its last change).
	typeVersion map[string]string
}

func newPublisher(mode string) (*publisher, cache.Cache, error) {
	p := &publisher{mode: mode, typeVersion: map[string]string{}}
	switch mode {
	case "snapshot":
		p.snapshots = cache.NewSnapshotCache(true, allNodes{}, nil)
		return p, p.snapshots, nil
	case "linear":
		p.linear = map[string]*cache.LinearCache{}
		caches := map[string]cache.Cache{}
		for _, t := range servedTypes {
			p.linear[t] = cache.NewLinearCache(t)
			caches[t] = p.linear[t]
		}
		mux := &cache.MuxCache{
			Classify:      func(r *cache.Request) string { return r.GetTypeUrl() },
			ClassifyDelta: func(r *cache.DeltaRequest) string { return r.GetTypeUrl() },
			Caches:        caches,
		}
		return p, mux, nil
	}
	return nil, nil, fmt.Errorf("--cache must be snapshot or linear, not %q", mode)
}

// publish makes `next` the served state; returns how many resources changed (added, updated or removed).
func (p *publisher) publish(next *loaded) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := 0
	changedTypes := map[string]bool{}
	for _, t := range servedTypes {
		update := map[string]types.Resource{}
		var remove []string
		for name, res := range next.byType[t] {
			if p.last == nil || !bytesEqual(p.last.bytes[t+"/"+name], next.bytes[t+"/"+name]) {
				update[name] = res
			}
		}
		if p.last != nil {
			for name := range p.last.byType[t] {
				if _, ok := next.byType[t][name]; !ok {
					remove = append(remove, name)
				}
			}
		}
		changed += len(update) + len(remove)
		if len(update) > 0 || len(remove) > 0 {
			changedTypes[t] = true
		}
		if p.linear != nil && (len(update) > 0 || len(remove) > 0) {
			if p.last == nil {
				p.linear[t].SetResources(next.byType[t])
			} else if err := p.linear[t].UpdateResources(update, remove); err != nil {
				return 0, err
			}
		}
	}
	if p.last != nil && changed == 0 {
		return 0, nil
	}
	p.generation++
	if p.snapshots != nil {
		// Each type keeps its version until one of its resources changes, so a ClusterLoadAssignment change
		// does not resend CDS, LDS and RDS to state-of-the-world streams.
		snap := &cache.Snapshot{}
		for _, t := range servedTypes {
			if changedTypes[t] || p.typeVersion[t] == "" {
				p.typeVersion[t] = strconv.Itoa(p.generation)
			}
			items := make([]types.Resource, 0, len(next.byType[t]))
			for _, res := range next.byType[t] {
				items = append(items, res)
			}
			snap.Resources[cache.GetResponseType(t)] = cache.NewResources(p.typeVersion[t], items)
		}
		if err := p.snapshots.SetSnapshot(context.Background(), snapshotKey, snap); err != nil {
			return 0, err
		}
	}
	p.last = next
	return changed, nil
}

func bytesEqual(a, b []byte) bool { return a != nil && b != nil && string(a) == string(b) }

var stdout = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

func emit(event map[string]any) {
	line, _ := json.Marshal(event)
	stdout.Lock()
	defer stdout.Unlock()
	stdout.w.Write(line)
	stdout.w.WriteByte('\n')
	stdout.w.Flush()
}

func nowMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

// procStats reads VmRSS and VmHWM (bytes) from /proc/self/status and utime+stime (ms) from /proc/self/stat.
func procStats() (rss, hwm int64, cpuMs float64) {
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				if f[0] == "VmRSS:" {
					rss = kb * 1024
				} else {
					hwm = kb * 1024
				}
			}
		}
	}
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			k, _ := strconv.ParseFloat(f[12], 64)
			cpuMs = (u + k) * 10 // USER_HZ is 100 on Linux
		}
	}
	return
}

func reload(p *publisher, file string) {
	next, err := readResources(file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gcp: keeping the last good version: %v\n", err)
		return
	}
	parsedAt := nowMs()
	changed, err := p.publish(next)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gcp: publish: %v\n", err)
		return
	}
	if changed > 0 {
		emit(map[string]any{"event": "loaded", "at": nowMs(), "parsedAt": parsedAt, "generation": p.generation, "resources": next.count, "changed": changed})
	}
}

func watchFile(p *publisher, file string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		return err
	}
	go func() {
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Name == abs && ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename) != 0 {
					reload(p, abs)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				fmt.Fprintf(os.Stderr, "gcp: watch: %v\n", err)
			}
		}
	}()
	return nil
}

func run() error {
	file := flag.String("resources", "", "static-resources file (JSON)")
	port := flag.Int("port", 0, "xDS port on 127.0.0.1 (0: a free port)")
	mode := flag.String("cache", "snapshot", "snapshot (SnapshotCache) or linear (a LinearCache per type)")
	flag.Parse()
	if *file == "" {
		return errors.New("--resources FILE is required")
	}
	p, c, err := newPublisher(*mode)
	if err != nil {
		return err
	}
	first, err := readResources(*file)
	if err != nil {
		return err
	}
	if _, err := p.publish(first); err != nil {
		return err
	}
	if err := watchFile(p, *file); err != nil {
		return err
	}
	emit(map[string]any{"event": "loaded", "at": nowMs(), "generation": p.generation, "resources": first.count, "changed": first.count})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	xds := server.NewServer(ctx, c, server.CallbackFuncs{})
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.MaxConcurrentStreams(1<<20))
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, xds)
	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	emit(map[string]any{"event": "listening", "xdsPort": lis.Addr().(*net.TCPAddr).Port, "pid": os.Getpid(), "cache": *mode})

	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "stats" {
				rss, hwm, cpu := procStats()
				emit(map[string]any{"event": "stats", "rss": rss, "hwm": hwm, "cpuMs": cpu})
			}
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
		gs.Stop()
	}()
	if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "gcp: %v\n", err)
		os.Exit(1)
	}
}
