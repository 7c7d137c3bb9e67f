// Mesh mode (--mesh): the proxies of a translated mesh, for bench/xds-mesh.ts. Unlike the static mode every
// stream is a distinct pod (its own node id, namespace, service account, labels and IP, given by the caller)
// and its subscriptions follow what it is sent, as an Envoy sidecar's do: CDS wildcard; EDS for the
// `outbound|` clusters it got; LDS wildcard; RDS for the route names of its listeners (`0.0.0.0_<port>` →
// `<port>`, and for proxyless clients `<host>:<port>` → `<port>`). Delta only. It is the same client as
// bench/mesh-sim.ts, in Go: the Node one spends more CPU per byte received than the control plane spends
// sending it, on the same two cores.
//
// Commands on stdin, one JSON object a line; events on stdout (times: epoch ms, the wall clock the caller
// shares):
//
//	{"cmd":"connect","batch":B,"nodes":[{"id","namespace","serviceAccount","labels","instanceIps","proxyType"}…]}
//	    opens a stream per node (appended to the streams already open) →
//	    {"event":"connected","batch":B,"startedAt":…,"ms":[…]}: ms from the command to each one's whole initial
//	    config ACKed
//	{"cmd":"round","round":R,"kind":"eds","targets":{"<cluster>":"<first endpoint address>"}}
//	{"cmd":"round","round":R,"kind":"type","typeUrl":"…"}
//	    from now on every open stream waits for: the ClusterLoadAssignments named with those first addresses,
//	    or any response of the type → {"event":"watching","round":R} at once, then
//	    {"event":"round","round":R,"complete":true,"ackedAt":[…]} once all have ACKed (ackedAt[i]: epoch ms
//	    when stream i had written that ACK)
//	{"cmd":"cancel"}      the round ends now: "complete":false, null for streams that missed it
//	{"cmd":"counters"}    {"event":"counters","bytes":…,"responses":…,"byType":{…}}
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

type meshNode struct {
	ID             string            `json:"id"`
	Namespace      string            `json:"namespace"`
	ServiceAccount string            `json:"serviceAccount"`
	Labels         map[string]string `json:"labels"`
	InstanceIPs    []string          `json:"instanceIps"`
	ProxyType      string            `json:"proxyType"`
}

type meshCommand struct {
	Cmd     string            `json:"cmd"`
	Batch   int               `json:"batch"`
	Nodes   []meshNode        `json:"nodes"`
	Round   int               `json:"round"`
	Kind    string            `json:"kind"`
	Targets map[string]string `json:"targets"`
	TypeURL string            `json:"typeUrl"`
}

// meshRound is what every stream open when it started waits for.
type meshRound struct {
	round    int
	kind     string
	targets  map[string]string
	typeIdx  int
	ackedAt  []float64 // NaN until the stream ACKed the change
	remain   atomic.Int64
	finished atomic.Bool
}

type meshBatch struct {
	id        int
	startedAt float64
	ms        []float64
	remain    atomic.Int64
}

type meshFleet struct {
	conns     []*grpc.ClientConn
	mu        sync.Mutex // streams
	streams   []*meshStream
	round     atomic.Pointer[meshRound]
	bytes     atomic.Int64
	responses atomic.Int64
	byType    [4]atomic.Int64
	errors    atomic.Int64
}

type meshStream struct {
	fleet      *meshFleet
	index      int
	node       meshNode
	batch      *meshBatch
	batchIndex int
	held       [4]bitset
	subscribed [4]bitset
	requested  [4]bool
	acked      [4]int
	pending    map[string]string // this stream's part of an "eds" round still missing
	pendingFor *meshRound
	converged  bool
}

var sidecarRoute = regexp.MustCompile(`^0\.0\.0\.0_(\d+)$`)
var apiListenerRoute = regexp.MustCompile(`:(\d+)$`)

func (n meshNode) proto() *core.Node {
	labels := map[string]any{}
	for k, v := range n.Labels {
		labels[k] = v
	}
	labelStruct, _ := structpb.NewStruct(labels)
	agent := "envoy"
	if n.ProxyType == "grpc" {
		agent = "grpc-node-js"
	}
	return &core.Node{
		Id:      n.ID,
		Cluster: "bench",
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			"NAMESPACE":       structpb.NewStringValue(n.Namespace),
			"PROXY_TYPE":      structpb.NewStringValue(n.ProxyType),
			"SERVICE_ACCOUNT": structpb.NewStringValue(n.ServiceAccount),
			"LABELS":          structpb.NewStructValue(labelStruct),
			"INSTANCE_IPS":    structpb.NewStringValue(strings.Join(n.InstanceIPs, ",")),
		}},
		UserAgentName: agent,
	}
}

func firstEndpointAddress(b []byte) (string, bool) {
	var cla endpoint.ClusterLoadAssignment
	if err := proto.Unmarshal(b, &cla); err != nil {
		return "", false
	}
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			return e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(), true
		}
	}
	return "", false
}

func (f *meshFleet) fail(id string, err error) {
	if f.errors.Add(1) <= maxErrorsShown {
		emit(map[string]any{"event": "error", "stream": -1, "error": fmt.Sprintf("%s: %v", id, err)})
	}
}

// names of the held resources of type t that pass keep and are not subscribed yet (marking them subscribed).
func (s *meshStream) unsubscribed(t int, candidates []string) []string {
	var added []string
	for _, n := range candidates {
		i := intern(n)
		if i/64 < len(s.subscribed[t].words) && s.subscribed[t].words[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		s.subscribed[t].add(i)
		added = append(added, n)
	}
	return added
}

func (s *meshStream) has(t int, name string) bool {
	i := intern(name)
	return i/64 < len(s.held[t].words) && s.held[t].words[i/64]&(1<<(i%64)) != 0
}

func (s *meshStream) run(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return err
	}
	sentNode := false
	subscribe := func(t int, names []string) error {
		first := !s.requested[t]
		if !first && len(names) == 0 {
			return nil
		}
		s.requested[t] = true
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: typeNames[t], ResourceNamesSubscribe: names}
		if !sentNode {
			req.Node = s.node.proto()
			sentNode = true
		}
		return st.Send(req)
	}
	if err := subscribe(0, nil); err != nil {
		return err
	}
	heldNames := [4]map[string]struct{}{{}, {}, {}, {}} // CDS and LDS names (the subscriptions derive from them)
	for {
		res, err := st.Recv()
		if err != nil {
			return err
		}
		t, err := responseType(res.GetTypeUrl())
		if err != nil {
			return err
		}
		f := s.fleet
		f.bytes.Add(int64(proto.Size(res)))
		f.responses.Add(1)
		f.byType[t].Add(1)
		names := make([]string, len(res.GetResources()))
		for i, r := range res.GetResources() {
			names[i] = r.GetName()
			s.held[t].add(intern(names[i]))
			if t == 0 || t == 2 {
				heldNames[t][names[i]] = struct{}{}
			}
		}
		for _, n := range res.GetRemovedResources() {
			s.held[t].remove(intern(n))
			delete(heldNames[t], n)
		}

		// The round this response may finish.
		w := f.round.Load()
		finishes := false
		if w != nil && w.index(s.index) && math.IsNaN(w.ackedAt[s.index]) {
			if w.kind == "type" {
				finishes = t == w.typeIdx
			} else {
				if s.pendingFor != w {
					s.pendingFor, s.pending = w, make(map[string]string, len(w.targets))
					for k, v := range w.targets {
						s.pending[k] = v
					}
				}
				if t == 1 {
					for i, r := range res.GetResources() {
						if want, ok := s.pending[names[i]]; ok {
							if got, ok := firstEndpointAddress(r.GetResource().GetValue()); ok && got == want {
								delete(s.pending, names[i])
							}
						}
					}
				}
				finishes = len(s.pending) == 0
			}
		}
		if err := st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typeNames[t], ResponseNonce: res.GetNonce()}); err != nil {
			return err
		}
		s.acked[t]++
		if finishes {
			w.ackedAt[s.index] = nowMs()
			if w.remain.Add(-1) == 0 && w.finished.CompareAndSwap(false, true) {
				f.reportRound(w, true)
			}
		}

		// Envoy's order: clusters, their endpoints, listeners, the routes they name.
		switch {
		case t == 0:
			var outbound []string
			for n := range heldNames[0] {
				if strings.HasPrefix(n, "outbound|") {
					outbound = append(outbound, n)
				}
			}
			if err := subscribe(1, s.unsubscribed(1, outbound)); err != nil {
				return err
			}
		case t == 1 && !s.requested[2]:
			if err := subscribe(2, nil); err != nil {
				return err
			}
		case t == 2:
			var routes []string
			for l := range heldNames[2] {
				m := sidecarRoute.FindStringSubmatch(l)
				if m == nil && s.node.ProxyType == "grpc" {
					m = apiListenerRoute.FindStringSubmatch(l)
				}
				if m != nil {
					routes = append(routes, m[1])
				}
			}
			if err := subscribe(3, s.unsubscribed(3, routes)); err != nil {
				return err
			}
		}
		if !s.converged && s.complete() {
			s.converged = true
			b := s.batch
			b.ms[s.batchIndex] = nowMs() - b.startedAt
			if b.remain.Add(-1) == 0 {
				emit(map[string]any{"event": "connected", "batch": b.id, "startedAt": b.startedAt, "ms": b.ms})
			}
		}
	}
}

// index reports whether stream i was open when the round started.
func (w *meshRound) index(i int) bool { return i < len(w.ackedAt) }

// complete: CDS and LDS ACKed, every subscribed assignment and route held.
func (s *meshStream) complete() bool {
	if s.acked[0] == 0 || s.acked[2] == 0 || !s.requested[1] || !s.requested[3] {
		return false
	}
	for _, t := range []int{1, 3} {
		for wi, word := range s.subscribed[t].words {
			var held uint64
			if wi < len(s.held[t].words) {
				held = s.held[t].words[wi]
			}
			if word&^held != 0 {
				return false
			}
		}
	}
	return true
}

func (f *meshFleet) reportRound(w *meshRound, complete bool) {
	emit(map[string]any{"event": "round", "round": w.round, "complete": complete, "ackedAt": ackTimes(w.ackedAt)})
}

func (f *meshFleet) connect(batch int, nodes []meshNode) {
	b := &meshBatch{id: batch, startedAt: nowMs(), ms: make([]float64, len(nodes))}
	b.remain.Store(int64(len(nodes)))
	if len(nodes) == 0 {
		emit(map[string]any{"event": "connected", "batch": b.id, "startedAt": b.startedAt, "ms": b.ms})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, n := range nodes {
		s := &meshStream{fleet: f, index: len(f.streams), node: n, batch: b, batchIndex: k}
		f.streams = append(f.streams, s)
		conn := f.conns[s.index%len(f.conns)]
		go func() {
			err := s.run(context.Background(), conn)
			f.fail(s.node.ID, fmt.Errorf("stream ended: %w", err))
		}()
	}
}

func (f *meshFleet) startRound(c meshCommand) {
	f.mu.Lock()
	open := len(f.streams)
	f.mu.Unlock()
	w := &meshRound{round: c.Round, kind: c.Kind, targets: c.Targets, typeIdx: -1, ackedAt: make([]float64, open)}
	if c.Kind == "type" {
		i, ok := typeIndex[c.TypeURL]
		if !ok {
			emit(map[string]any{"event": "error", "stream": -1, "error": "round of unknown type " + c.TypeURL})
			return
		}
		w.typeIdx = i
	}
	for i := range w.ackedAt {
		w.ackedAt[i] = math.NaN()
	}
	w.remain.Store(int64(open))
	f.round.Store(w)
	emit(map[string]any{"event": "watching", "round": c.Round})
}

func runMesh(target string, connections, window int) error {
	f := &meshFleet{conns: make([]*grpc.ClientConn, connections)}
	for i := range f.conns {
		c, err := grpc.NewClient(target, dialOptions(window)...)
		if err != nil {
			return err
		}
		f.conns[i] = c
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 256<<20) // a connect command lists every node
	for sc.Scan() {
		var c meshCommand
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			emit(map[string]any{"event": "error", "stream": -1, "error": "bad command: " + err.Error()})
			continue
		}
		switch c.Cmd {
		case "connect":
			f.connect(c.Batch, c.Nodes)
		case "round":
			f.startRound(c)
		case "cancel":
			if w := f.round.Load(); w != nil && w.finished.CompareAndSwap(false, true) {
				f.reportRound(w, false)
			}
		case "counters":
			byType := map[string]int64{}
			for i, t := range typeNames {
				byType[t] = f.byType[i].Load()
			}
			emit(map[string]any{"event": "counters", "bytes": f.bytes.Load(), "responses": f.responses.Load(), "byType": byType})
		default:
			emit(map[string]any{"event": "error", "stream": -1, "error": "unknown command " + c.Cmd})
		}
	}
	os.Exit(0) // stdin closed: the caller is gone
	return nil
}
