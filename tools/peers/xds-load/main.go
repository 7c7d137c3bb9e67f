// xds-load: a neutral ADS load generator. It opens N ADS streams (state of the world or delta) over M HTTP/2
// connections to one xDS server, each stream with its own node id, subscribing as an Envoy sidecar does
// (CDS wildcard; EDS for every cluster it got; LDS wildcard; RDS for --routes) and ACKing every response.
// The same binary loads Trellis and go-control-plane, so neither side gets clients in its own runtime.
//
//	xds-load --target 127.0.0.1:PORT [--protocol sotw|delta] [--streams 1000] [--connections 50]
//	    [--routes 8080] [--record]
//	xds-load --mesh --target 127.0.0.1:PORT [--connections 50]   distinct pods of a translated mesh (mesh.go)
//
// Events on stdout, one JSON object a line (times: epoch ms, the wall clock the caller shares):
//
//	{"event":"converged","startedAt":…,"allMs":…,"streamMs":[…]}   every stream has its initial config ACKed
//	{"event":"error","stream":i,"error":"…"}                        a stream failed (first 20)
//
// Commands on stdin:
//
//	watch ROUND NAME PORT   from now on, wait for every stream to receive and ACK ClusterLoadAssignment NAME with
//	                        its first endpoint on PORT; answers {"event":"watching","round":…} at once and
//	                        {"event":"changed","round":…,"complete":true,"ackedAt":[…],"firstReceiptAt":…} when
//	                        all streams have ACKed it (ackedAt[i]: when stream i had written its ACK)
//	cancel                  stop waiting: "changed" with "complete":false, null for streams that missed it
//	counters                {"event":"counters","bytes":…,"responses":…,"byType":{…}} (all streams, so far)
//	held                    with --record: {"event":"held","streams":[{type:{name:digest of the resource}}]}
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	// Nested Anys of the listener, for digest's JSON.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	typeCluster    = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	typeEndpoint   = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	typeListener   = "type.googleapis.com/envoy.config.listener.v3.Listener"
	typeRoute      = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	maxErrorsShown = 20
)

var typeIndex = map[string]int{typeCluster: 0, typeEndpoint: 1, typeListener: 2, typeRoute: 3}
var typeNames = []string{typeCluster, typeEndpoint, typeListener, typeRoute}

// names interns resource names to small integers, so that what each stream holds is a bitset, not a map of
// strings (5,000 streams × 2,000 names).
var names = struct {
	sync.RWMutex
	index map[string]int
}{index: map[string]int{}}

func intern(name string) int {
	names.RLock()
	i, ok := names.index[name]
	names.RUnlock()
	if ok {
		return i
	}
	names.Lock()
	defer names.Unlock()
	if i, ok := names.index[name]; ok {
		return i
	}
	i = len(names.index)
	names.index[name] = i
	return i
}

type bitset struct {
	words []uint64
	count int
}

func (b *bitset) add(i int) {
	for len(b.words) <= i/64 {
		b.words = append(b.words, 0)
	}
	if b.words[i/64]&(1<<(i%64)) == 0 {
		b.words[i/64] |= 1 << (i % 64)
		b.count++
	}
}

func (b *bitset) remove(i int) {
	if i/64 < len(b.words) && b.words[i/64]&(1<<(i%64)) != 0 {
		b.words[i/64] &^= 1 << (i % 64)
		b.count--
	}
}

func (b *bitset) clear() { b.words, b.count = b.words[:0], 0 }

type watch struct {
	round    int
	target   string
	port     uint32
	ackedAt  []float64 // NaN until the stream ACKed
	remain   atomic.Int64
	first    atomic.Uint64 // math.Float64bits of the first receipt
	finished atomic.Bool
}

type loadGen struct {
	protocol    string
	routes      []string
	record      bool
	streams     []*stream
	converged   atomic.Int64
	allDone     chan struct{}
	bytes       atomic.Int64
	responses   atomic.Int64
	byType      [4]atomic.Int64
	errors      atomic.Int64
	current     atomic.Pointer[watch]
	startedAt   float64
	startedMono time.Time
}

type stream struct {
	lg          *loadGen
	index       int
	held        [4]bitset
	acked       [4]int
	requested   [4]bool
	clusters    []string
	convergedMs float64
	recordMu    sync.Mutex
	recorded    [4]map[string]string
}

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

func emit(event map[string]any) {
	line, err := json.Marshal(event)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"event":"error","error":%q}`, err.Error()))
	}
	out.Lock()
	defer out.Unlock()
	out.w.Write(line)
	out.w.WriteByte('\n')
	out.w.Flush()
}

func nowMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

// resourceName reads field 1 (name, or cluster_name of a ClusterLoadAssignment) of a serialized resource.
func resourceName(b []byte) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return ""
			}
			return string(v)
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return ""
		}
		b = b[m:]
	}
	return ""
}

func firstEndpointPort(b []byte) (uint32, bool) {
	var cla endpoint.ClusterLoadAssignment
	if err := proto.Unmarshal(b, &cla); err != nil {
		return 0, false
	}
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			return e.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(), true
		}
	}
	return 0, false
}

func (lg *loadGen) fail(i int, err error) {
	if lg.errors.Add(1) <= maxErrorsShown {
		emit(map[string]any{"event": "error", "stream": i, "error": err.Error()})
	}
}

func node(i int) *core.Node {
	id := fmt.Sprintf("load-%05d.ns-%d", i, i%10)
	return &core.Node{
		Id:      id,
		Cluster: "xds-load",
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			"NAMESPACE":       structpb.NewStringValue(fmt.Sprintf("ns-%d", i%10)),
			"PROXY_TYPE":      structpb.NewStringValue("envoy"),
			"SERVICE_ACCOUNT": structpb.NewStringValue("default"),
			"INSTANCE_IPS":    structpb.NewStringValue("10.255.0.1"),
		}},
		Locality:             &core.Locality{Region: "r1", Zone: "z1"},
		UserAgentName:        "envoy",
		UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: "1.36.0-xds-load"},
	}
}

// subscription is what a stream asks for of one type: nil for the wildcards (CDS, LDS).
func (s *stream) subscription(t int) []string {
	switch t {
	case 1:
		return s.clusters
	case 3:
		return s.lg.routes
	}
	return nil
}

// handle processes one response: what it holds, the watched change, the ACK, the next subscription.
func (s *stream) handle(t int, names []string, bodies [][]byte, removed []string, full bool) {
	lg := s.lg
	if full && (t == 0 || t == 2) {
		s.held[t].clear() // SotW CDS/LDS: full state, what is not listed is gone
	}
	for _, n := range names {
		s.held[t].add(intern(n))
	}
	for _, n := range removed {
		s.held[t].remove(intern(n))
	}
	if t == 0 && !s.requested[1] {
		s.clusters = append([]string(nil), names...)
		sort.Strings(s.clusters)
	}
	if lg.record {
		s.recordMu.Lock()
		if s.recorded[t] == nil || (full && (t == 0 || t == 2)) {
			s.recorded[t] = map[string]string{}
		}
		for i, n := range names {
			s.recorded[t][n] = digest(t, bodies[i])
		}
		for _, n := range removed {
			delete(s.recorded[t], n)
		}
		s.recordMu.Unlock()
	}
}

// digest identifies a resource by content, not by encoding: servers written with different protobuf libraries
// may order or pack the same message differently, so it is decoded and written again as proto3 JSON (nested
// Anys expanded) by this one binary. Raw bytes when it does not decode.
func digest(t int, body []byte) string {
	var msg proto.Message
	switch t {
	case 0:
		msg = &cluster.Cluster{}
	case 1:
		msg = &endpoint.ClusterLoadAssignment{}
	case 2:
		msg = &listener.Listener{}
	default:
		msg = &route.RouteConfiguration{}
	}
	canonical := body
	if err := proto.Unmarshal(body, msg); err == nil {
		if j, err := protojson.Marshal(msg); err == nil {
			canonical = j
		}
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// carries reports whether this response holds the watched change for this stream (first time only).
func (s *stream) carries(w *watch, t int, names []string, bodies [][]byte) bool {
	if w == nil || t != 1 || !math.IsNaN(w.ackedAt[s.index]) {
		return false
	}
	for i, n := range names {
		if n == w.target {
			if port, ok := firstEndpointPort(bodies[i]); ok && port == w.port {
				w.first.CompareAndSwap(0, math.Float64bits(nowMs()))
				return true
			}
		}
	}
	return false
}

func (s *stream) afterAck(w *watch, carried bool, t int) (next int) {
	lg := s.lg
	if carried {
		w.ackedAt[s.index] = nowMs()
		if w.remain.Add(-1) == 0 && w.finished.CompareAndSwap(false, true) {
			lg.report(w, true)
		}
	}
	s.acked[t]++
	next = -1
	switch {
	case t == 0 && !s.requested[1]:
		next = 1
	case t == 1 && !s.requested[2]:
		next = 2
	case t == 2 && !s.requested[3]:
		next = 3
	}
	if math.IsNaN(s.convergedMs) && s.complete() {
		s.convergedMs = float64(time.Since(lg.startedMono).Microseconds()) / 1000
		if lg.converged.Add(1) == int64(len(lg.streams)) {
			close(lg.allDone)
		}
	}
	return next
}

func (s *stream) complete() bool {
	if s.acked[0] == 0 || s.acked[2] == 0 || len(s.clusters) == 0 {
		return false
	}
	if s.held[0].count != len(s.clusters) || s.held[1].count != len(s.clusters) {
		return false
	}
	for _, r := range s.lg.routes {
		i := intern(r)
		if i/64 >= len(s.held[3].words) || s.held[3].words[i/64]&(1<<(i%64)) == 0 {
			return false
		}
	}
	return true
}

func (s *stream) count(t int, size int) {
	s.lg.bytes.Add(int64(size))
	s.lg.responses.Add(1)
	s.lg.byType[t].Add(1)
}

func (s *stream) runSotw(ctx context.Context, client discovery.AggregatedDiscoveryServiceClient) error {
	st, err := client.StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	send := func(t int, version, nonce string, first bool) error {
		req := &discovery.DiscoveryRequest{TypeUrl: typeNames[t], VersionInfo: version, ResponseNonce: nonce, ResourceNames: s.subscription(t)}
		if first {
			s.requested[t] = true
		}
		if t == 0 && version == "" && nonce == "" {
			req.Node = node(s.index)
		}
		return st.Send(req)
	}
	if err := send(0, "", "", true); err != nil {
		return err
	}
	for {
		res, err := st.Recv()
		if err != nil {
			return err
		}
		t, err := responseType(res.GetTypeUrl())
		if err != nil {
			return err
		}
		s.count(t, proto.Size(res))
		names := make([]string, len(res.GetResources()))
		bodies := make([][]byte, len(res.GetResources()))
		for i, a := range res.GetResources() {
			bodies[i] = a.GetValue()
			names[i] = resourceName(bodies[i])
		}
		s.handle(t, names, bodies, nil, true)
		w := s.lg.current.Load()
		carried := s.carries(w, t, names, bodies)
		if err := send(t, res.GetVersionInfo(), res.GetNonce(), false); err != nil {
			return err
		}
		if next := s.afterAck(w, carried, t); next >= 0 {
			if err := send(next, "", "", true); err != nil {
				return err
			}
		}
	}
}

func (s *stream) runDelta(ctx context.Context, client discovery.AggregatedDiscoveryServiceClient) error {
	st, err := client.DeltaAggregatedResources(ctx)
	if err != nil {
		return err
	}
	subscribe := func(t int) error {
		s.requested[t] = true
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: typeNames[t], ResourceNamesSubscribe: s.subscription(t)}
		if t == 0 {
			req.Node = node(s.index)
		}
		return st.Send(req)
	}
	if err := subscribe(0); err != nil {
		return err
	}
	for {
		res, err := st.Recv()
		if err != nil {
			return err
		}
		t, err := responseType(res.GetTypeUrl())
		if err != nil {
			return err
		}
		s.count(t, proto.Size(res))
		names := make([]string, len(res.GetResources()))
		bodies := make([][]byte, len(res.GetResources()))
		for i, r := range res.GetResources() {
			names[i] = r.GetName()
			bodies[i] = r.GetResource().GetValue()
		}
		s.handle(t, names, bodies, res.GetRemovedResources(), false)
		w := s.lg.current.Load()
		carried := s.carries(w, t, names, bodies)
		if err := st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typeNames[t], ResponseNonce: res.GetNonce()}); err != nil {
			return err
		}
		if next := s.afterAck(w, carried, t); next >= 0 {
			if err := subscribe(next); err != nil {
				return err
			}
		}
	}
}

// responseType is the index of a response's type URL in typeNames.
func responseType(typeURL string) (int, error) {
	if t, ok := typeIndex[typeURL]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("response of unexpected type %s", typeURL)
}

// ackTimes is ackedAt as JSON values: null for the streams that have not ACKed (NaN).
func ackTimes(ackedAt []float64) []any {
	acked := make([]any, len(ackedAt))
	for i, v := range ackedAt {
		if !math.IsNaN(v) {
			acked[i] = v
		}
	}
	return acked
}

func (lg *loadGen) report(w *watch, complete bool) {
	acked := ackTimes(w.ackedAt)
	var first any
	if f := w.first.Load(); f != 0 {
		first = math.Float64frombits(f)
	}
	emit(map[string]any{"event": "changed", "round": w.round, "complete": complete, "ackedAt": acked, "firstReceiptAt": first})
}

func (lg *loadGen) counters() map[string]any {
	byType := map[string]int64{}
	for i, t := range typeNames {
		byType[t] = lg.byType[i].Load()
	}
	return map[string]any{"event": "counters", "bytes": lg.bytes.Load(), "responses": lg.responses.Load(), "byType": byType}
}

func (lg *loadGen) commands() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "watch":
			if len(f) != 4 {
				emit(map[string]any{"event": "error", "stream": -1, "error": "usage: watch ROUND NAME PORT"})
				continue
			}
			round, _ := strconv.Atoi(f[1])
			port, _ := strconv.ParseUint(f[3], 10, 32)
			w := &watch{round: round, target: f[2], port: uint32(port), ackedAt: make([]float64, len(lg.streams))}
			for i := range w.ackedAt {
				w.ackedAt[i] = math.NaN()
			}
			w.remain.Store(int64(len(lg.streams)))
			lg.current.Store(w)
			emit(map[string]any{"event": "watching", "round": round})
		case "cancel":
			if w := lg.current.Load(); w != nil && w.finished.CompareAndSwap(false, true) {
				lg.report(w, false)
			}
		case "counters":
			emit(lg.counters())
		case "held":
			all := make([]any, len(lg.streams))
			for i, s := range lg.streams {
				s.recordMu.Lock()
				m := map[string]map[string]string{}
				for t, r := range s.recorded {
					if r != nil {
						c := make(map[string]string, len(r))
						for k, v := range r {
							c[k] = v
						}
						m[typeNames[t]] = c
					}
				}
				s.recordMu.Unlock()
				all[i] = m
			}
			emit(map[string]any{"event": "held", "streams": all})
		default:
			emit(map[string]any{"event": "error", "stream": -1, "error": "unknown command " + f[0]})
		}
	}
	os.Exit(0) // stdin closed: the caller is gone
}

func run() error {
	target := flag.String("target", "", "xDS server host:port")
	protocol := flag.String("protocol", "sotw", "sotw or delta")
	streams := flag.Int("streams", 1000, "ADS streams")
	connections := flag.Int("connections", 50, "HTTP/2 connections the streams are spread over")
	routes := flag.String("routes", "8080", "RouteConfiguration names to subscribe to (comma list)")
	record := flag.Bool("record", false, "keep a digest of every held resource (for the held command)")
	mesh := flag.Bool("mesh", false, "mesh mode: streams of distinct pods, opened by commands on stdin (mesh.go)")
	window := flag.Int("window", 0, "HTTP/2 receive window of each stream and connection in bytes (Envoy's default: 268435456); 0: grpc-go's (64 KiB, grown by its BDP estimate)")
	flag.Parse()
	if *window != 0 && (*window < 65535 || *window > math.MaxInt32) {
		return fmt.Errorf("--window must be 0 or 65535..%d, not %d", math.MaxInt32, *window)
	}
	if *target == "" {
		return errors.New("--target is required")
	}
	if *mesh {
		if *connections <= 0 {
			return errors.New("--connections must be positive")
		}
		return runMesh(*target, *connections, *window)
	}
	if *protocol != "sotw" && *protocol != "delta" {
		return fmt.Errorf("--protocol must be sotw or delta, not %q", *protocol)
	}
	if *streams <= 0 || *connections <= 0 {
		return errors.New("--streams and --connections must be positive")
	}
	lg := &loadGen{protocol: *protocol, routes: strings.Split(*routes, ","), record: *record, allDone: make(chan struct{})}
	conns := make([]*grpc.ClientConn, *connections)
	for i := range conns {
		c, err := grpc.NewClient(*target, dialOptions(*window)...)
		if err != nil {
			return err
		}
		conns[i] = c
	}
	go lg.commands()
	lg.startedAt = nowMs()
	lg.startedMono = time.Now()
	lg.streams = make([]*stream, *streams)
	for i := range lg.streams {
		lg.streams[i] = &stream{lg: lg, index: i, convergedMs: math.NaN()}
	}
	ctx := context.Background()
	for i, s := range lg.streams {
		client := discovery.NewAggregatedDiscoveryServiceClient(conns[i%len(conns)])
		go func() {
			var err error
			if lg.protocol == "delta" {
				err = s.runDelta(ctx, client)
			} else {
				err = s.runSotw(ctx, client)
			}
			lg.fail(s.index, fmt.Errorf("stream ended: %w", err))
		}()
	}
	<-lg.allDone
	ms := make([]float64, len(lg.streams))
	for i, s := range lg.streams {
		ms[i] = s.convergedMs
	}
	emit(map[string]any{"event": "converged", "startedAt": lg.startedAt, "allMs": float64(time.Since(lg.startedMono).Microseconds()) / 1000, "streamMs": ms})
	select {} // serve commands until stdin closes
}

// dialOptions: plaintext, responses up to 64 MiB, and with window > 0 fixed HTTP/2 receive windows of that
// size. Envoy's HTTP/2 codec advertises 256 MiB for both the stream and the connection unless its bootstrap
// says otherwise (Istio's and Trellis's xDS clusters do not), so it never makes the control plane wait for a
// WINDOW_UPDATE; grpc-go starts at 64 KiB and grows its windows only once its BDP estimate sees them full.
func dialOptions(window int) []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}
	if window > 0 {
		opts = append(opts, grpc.WithInitialWindowSize(int32(window)), grpc.WithInitialConnWindowSize(int32(window)))
	}
	return opts
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "xds-load: %v\n", err)
		os.Exit(1)
	}
}
