// grpc-go-xds: a second, independent real xDS client for Trellis's interop tests (test/interop/grpc-go.test.ts),
// built on grpc-go's own xDS implementation (google.golang.org/grpc v1.85.0, package xds): the xds:/// resolver,
// the xDS credentials (A29, insecure fallback) and xds.NewGRPCServer (A36). Both read the standard bootstrap
// named by GRPC_XDS_BOOTSTRAP (the Trellis agent writes it: sidecar/bootstrap-grpc.ts).
//
//	grpc-go-xds server --addr 0.0.0.0:PORT --name NAME [--version V] [--xds-creds=true]
//	grpc-go-xds client --target xds:///HOST:PORT [--n 20] [--concurrency 1] [--deadline 5s]
//	                   [--ready-timeout 30s] [--pace 0] [--metadata k=v]... [--xds-creds=true]
//
// The service is the demo's `trellis.demo.Echo/Echo` with JSON messages (examples/demo/echo.ts), so grpc-js and
// grpc-go clients and servers can call each other; the reply adds the server's version, the caller's SPIFFE ID
// (URI SAN of the peer certificate, empty without mTLS) and the value of `grpc-previous-rpc-attempts` (how many
// times the client had already tried this call: retries are observable). grpc.health.v1 is served too.
//
// Output is JSON lines on stdout. The server prints `listening`, then `serving` on every serving-mode change
// (with the error grpc-go gives for NOT_SERVING); on stdin it takes `ok`, `fail-every N`, `fail CODE`,
// `sleep MS` (the behaviour of later calls), `stats` (calls served) and `csds` (its xDS client's resources).
// The client prints one `result` object: per-server and per-code counts, per-call outcomes, latencies, the
// retries the servers saw, and every xDS resource its xDS client did not ACK (CSDS: NACKED with grpc-go's
// error, DOES_NOT_EXIST, REQUESTED), so a NACK is visible in the result itself.
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v3statuspb "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"
	"google.golang.org/grpc/xds/csds"
	"google.golang.org/protobuf/proto"
)

// ---------------------------------------------------------------------------------------------------------
// The codec: protobuf for proto messages (health, CSDS), JSON for the Echo messages. Registered as "proto",
// the default content-subtype, because grpc-js sends plain `application/grpc` for the JSON Echo.

type jsonMessage struct{ value any }

type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) ([]byte, error) {
	if j, ok := v.(*jsonMessage); ok {
		return json.Marshal(j.value)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("codec: cannot marshal %T", v)
	}
	return proto.Marshal(m)
}

func (codec) Unmarshal(data []byte, v any) error {
	if j, ok := v.(*jsonMessage); ok {
		return json.Unmarshal(data, j.value)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("codec: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func init() { encoding.RegisterCodec(codec{}) }

// ---------------------------------------------------------------------------------------------------------
// The Echo service

type echoRequest struct {
	Message string `json:"message"`
}

type echoReply struct {
	Message string `json:"message"`
	// The name of the server that answered.
	Server  string `json:"server"`
	Version string `json:"version"`
	// The caller's SPIFFE ID from its certificate, empty on a plaintext connection.
	Peer string `json:"peer"`
	// grpc-previous-rpc-attempts of this call: 0 on a first attempt.
	PreviousAttempts int `json:"previousAttempts"`
}

type echoHandler interface {
	echo(ctx context.Context, req *echoRequest) (*echoReply, error)
}

var echoServiceDesc = grpc.ServiceDesc{
	ServiceName: "trellis.demo.Echo",
	HandlerType: (*echoHandler)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			req := &echoRequest{}
			if err := dec(&jsonMessage{req}); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, r any) (any, error) {
				reply, err := srv.(echoHandler).echo(ctx, r.(*echoRequest))
				if err != nil {
					return nil, err
				}
				return &jsonMessage{reply}, nil
			}
			if interceptor == nil {
				return call(ctx, req)
			}
			return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/trellis.demo.Echo/Echo"}, call)
		},
	}},
	Metadata: "echo.json",
}

// spiffeID is the first spiffe:// URI SAN of the leaf certificate in a TLS AuthInfo, or "".
func spiffeID(info credentials.AuthInfo) string {
	tls, ok := info.(credentials.TLSInfo)
	if !ok || len(tls.State.PeerCertificates) == 0 {
		return ""
	}
	for _, uri := range tls.State.PeerCertificates[0].URIs {
		if uri.Scheme == "spiffe" {
			return uri.String()
		}
	}
	return ""
}

// ---------------------------------------------------------------------------------------------------------
// Output

var outMu sync.Mutex

func emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"event": "error", "error": err.Error()})
	}
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

// notAcked lists the resources of this process's xDS clients whose CSDS status is not ACKED.
func notAcked() []map[string]any {
	s, err := csds.NewClientStatusDiscoveryServer()
	if err != nil {
		return []map[string]any{{"error": err.Error()}}
	}
	defer s.Close()
	resp, err := s.FetchClientStatus(context.Background(), &v3statuspb.ClientStatusRequest{})
	if err != nil {
		return []map[string]any{{"error": err.Error()}}
	}
	out := []map[string]any{}
	for _, cfg := range resp.GetConfig() {
		for _, r := range cfg.GetGenericXdsConfigs() {
			if r.GetClientStatus().String() == "ACKED" {
				continue
			}
			entry := map[string]any{"type": r.GetTypeUrl(), "name": r.GetName(), "status": r.GetClientStatus().String()}
			if e := r.GetErrorState(); e != nil {
				entry["error"] = e.GetDetails()
				entry["version"] = e.GetVersionInfo()
			}
			out = append(out, entry)
		}
	}
	return out
}

// resources lists every resource of this process's xDS clients with its status.
func resources() []map[string]any {
	s, err := csds.NewClientStatusDiscoveryServer()
	if err != nil {
		return []map[string]any{{"error": err.Error()}}
	}
	defer s.Close()
	resp, err := s.FetchClientStatus(context.Background(), &v3statuspb.ClientStatusRequest{})
	if err != nil {
		return []map[string]any{{"error": err.Error()}}
	}
	out := []map[string]any{}
	for _, cfg := range resp.GetConfig() {
		for _, r := range cfg.GetGenericXdsConfigs() {
			entry := map[string]any{"type": r.GetTypeUrl(), "name": r.GetName(), "status": r.GetClientStatus().String()}
			if e := r.GetErrorState(); e != nil {
				entry["error"] = e.GetDetails()
			}
			out = append(out, entry)
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------------------------
// Server

type behavior struct {
	kind  string // ok | fail-every | fail | sleep
	every int
	code  codes.Code
	sleep time.Duration
}

type server struct {
	name, version string
	mu            sync.Mutex
	behavior      behavior
	served        atomic.Int64
}

func (s *server) echo(ctx context.Context, req *echoRequest) (*echoReply, error) {
	n := s.served.Add(1)
	reply := &echoReply{Message: req.Message, Server: s.name, Version: s.version}
	if p, ok := peer.FromContext(ctx); ok {
		reply.Peer = spiffeID(p.AuthInfo)
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("grpc-previous-rpc-attempts"); len(v) > 0 {
			reply.PreviousAttempts, _ = strconv.Atoi(v[0])
		}
	}
	s.mu.Lock()
	b := s.behavior
	s.mu.Unlock()
	switch b.kind {
	case "fail-every":
		// every 2: fail, ok, fail, ok, ... (as the grpc-js echo servers of test/helpers/mesh-e2e.ts)
		if n%int64(b.every) == 1%int64(b.every) {
			return nil, status.Errorf(codes.Unavailable, "%s: injected failure", s.name)
		}
	case "fail":
		return nil, status.Errorf(b.code, "%s: always fails", s.name)
	case "sleep":
		select {
		case <-time.After(b.sleep):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return reply, nil
}

func parseBehavior(line string) (behavior, error) {
	f := strings.Fields(line)
	switch {
	case len(f) == 1 && f[0] == "ok":
		return behavior{kind: "ok"}, nil
	case len(f) == 2 && f[0] == "fail-every":
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 {
			return behavior{}, fmt.Errorf("fail-every wants a positive integer, got %q", f[1])
		}
		return behavior{kind: "fail-every", every: n}, nil
	case len(f) == 2 && f[0] == "fail":
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 || n > 16 {
			return behavior{}, fmt.Errorf("fail wants a status code 1..16, got %q", f[1])
		}
		return behavior{kind: "fail", code: codes.Code(n)}, nil
	case len(f) == 2 && f[0] == "sleep":
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			return behavior{}, fmt.Errorf("sleep wants milliseconds, got %q", f[1])
		}
		return behavior{kind: "sleep", sleep: time.Duration(n) * time.Millisecond}, nil
	}
	return behavior{}, fmt.Errorf("unknown command %q (ok | fail-every N | fail CODE | sleep MS | stats | csds)", line)
}

func runServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "0.0.0.0:0", "address to listen on (its host:port names the server Listener)")
	name := fs.String("name", "grpc-go", "server name in replies")
	version := fs.String("version", "v1", "server version in replies")
	useXdsCreds := fs.Bool("xds-creds", true, "xDS server credentials (mTLS from the Listener), insecure fallback")
	initial := fs.String("behavior", "ok", "initial behaviour: ok | fail-every N | fail CODE | sleep MS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := parseBehavior(*initial)
	if err != nil {
		return err
	}
	srv := &server{name: *name, version: *version, behavior: b}

	creds := insecure.NewCredentials()
	if *useXdsCreds {
		creds, err = xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			return err
		}
	}
	gs, err := xds.NewGRPCServer(
		grpc.Creds(creds),
		xds.ServingModeCallback(func(addr net.Addr, args xds.ServingModeChangeArgs) {
			ev := map[string]any{"event": "serving", "addr": addr.String(), "mode": args.Mode.String()}
			if args.Err != nil {
				ev["error"] = args.Err.Error()
			}
			emit(ev)
		}),
	)
	if err != nil {
		return err
	}
	gs.RegisterService(&echoServiceDesc, srv)
	healthpb.RegisterHealthServer(gs, health.NewServer())

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	emit(map[string]any{"event": "listening", "addr": lis.Addr().String(), "name": *name, "version": *version})

	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			line := strings.TrimSpace(in.Text())
			switch line {
			case "":
				continue
			case "stats":
				emit(map[string]any{"event": "stats", "served": srv.served.Load()})
				continue
			case "csds":
				emit(map[string]any{"event": "csds", "resources": resources()})
				continue
			}
			nb, err := parseBehavior(line)
			if err != nil {
				emit(map[string]any{"event": "error", "error": err.Error()})
				continue
			}
			srv.mu.Lock()
			srv.behavior = nb
			srv.mu.Unlock()
			emit(map[string]any{"event": "behavior", "behavior": line})
		}
		// stdin closed: the parent is gone or wants us to stop.
		gs.Stop()
	}()
	return gs.Serve(lis)
}

// ---------------------------------------------------------------------------------------------------------
// Client

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type callResult struct {
	OK               bool    `json:"ok"`
	Server           string  `json:"server,omitempty"`
	Version          string  `json:"version,omitempty"`
	Code             string  `json:"code"`
	Message          string  `json:"message,omitempty"`
	Ms               float64 `json:"ms"`
	PreviousAttempts int     `json:"previousAttempts,omitempty"`
	// SPIFFE IDs: the server's (from its certificate, seen by this client) and ours (as the server saw it).
	ServerID string `json:"serverId,omitempty"`
	ClientID string `json:"clientId,omitempty"`
}

func oneCall(ctx context.Context, conn *grpc.ClientConn, deadline time.Duration, md metadata.MD, message string) callResult {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if len(md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	reply := &echoReply{}
	var p peer.Peer
	started := time.Now()
	err := conn.Invoke(ctx, "/trellis.demo.Echo/Echo", &jsonMessage{&echoRequest{Message: message}}, &jsonMessage{reply},
		grpc.WaitForReady(true), grpc.Peer(&p))
	ms := float64(time.Since(started).Microseconds()) / 1000
	if err != nil {
		st := status.Convert(err)
		return callResult{Code: st.Code().String(), Message: st.Message(), Ms: ms}
	}
	return callResult{
		OK: true, Server: reply.Server, Version: reply.Version, Code: codes.OK.String(), Ms: ms,
		PreviousAttempts: reply.PreviousAttempts, ServerID: spiffeID(p.AuthInfo), ClientID: reply.Peer,
	}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func runClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	target := fs.String("target", "", "xds:///host:port")
	n := fs.Int("n", 20, "calls to make (after the warm-up call)")
	concurrency := fs.Int("concurrency", 1, "calls in flight at once")
	deadline := fs.Duration("deadline", 5*time.Second, "deadline of each call")
	readyTimeout := fs.Duration("ready-timeout", 30*time.Second, "deadline of the warm-up call (waits for the xDS config)")
	message := fs.String("message", "hi", "request message")
	pace := fs.Duration("pace", 0, "pause between one worker's calls (spreads the calls over time, e.g. for outlier detection)")
	useXdsCreds := fs.Bool("xds-creds", true, "xDS channel credentials (mTLS from the Cluster), insecure fallback")
	var mdFlags multiFlag
	fs.Var(&mdFlags, "metadata", "k=v request metadata (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*target, "xds:///") {
		return errors.New("--target must be xds:///host:port")
	}
	md := metadata.MD{}
	for _, kv := range mdFlags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--metadata %q: want k=v", kv)
		}
		md.Append(strings.ToLower(k), v)
	}
	creds := insecure.NewCredentials()
	if *useXdsCreds {
		c, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			return err
		}
		creds = c
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()

	// The warm-up call waits (WaitForReady) until the channel has its xDS config and a connection; it is
	// reported apart, so the counted calls all run on a configured channel.
	warmup := oneCall(context.Background(), conn, *readyTimeout, md, *message)

	results := make([]callResult, *n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < *concurrency && w < *n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				results[i] = oneCall(context.Background(), conn, *deadline, md, *message)
				if *pace > 0 {
					time.Sleep(*pace)
				}
			}
		}()
	}
	wg.Wait()

	byServer := map[string]int{}
	byCode := map[string]int{}
	retried := 0
	var latencies []float64
	for _, r := range results {
		byCode[r.Code]++
		if r.OK {
			byServer[r.Server]++
		}
		if r.PreviousAttempts > 0 {
			retried++
		}
		latencies = append(latencies, r.Ms)
	}
	sort.Float64s(latencies)
	emit(map[string]any{
		"event":    "result",
		"target":   *target,
		"warmup":   warmup,
		"calls":    results,
		"byServer": byServer,
		"byCode":   byCode,
		// Successful calls that a server saw on a later attempt (the client retried them).
		"retried": retried,
		"latencyMs": map[string]float64{
			"min": percentile(latencies, 0), "p50": percentile(latencies, 0.5),
			"p90": percentile(latencies, 0.9), "max": percentile(latencies, 1),
		},
		"notAcked": notAcked(),
	})
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grpc-go-xds server|client [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(os.Args[2:])
	case "client":
		err = runClient(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (server | client)", os.Args[1])
	}
	if err != nil {
		emit(map[string]any{"event": "fatal", "error": err.Error()})
		os.Exit(1)
	}
}
