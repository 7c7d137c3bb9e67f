#!/usr/bin/env bash
# The Trellis walkthrough, against any cluster kubectl reaches (KUBECONFIG): install the mesh, label a
# namespace, deploy the example application, route it, and check at every step what the traffic does.
# Each step prints what it runs; the first check that fails stops the script with a message naming it.
#
#   examples/kubernetes/walkthrough.sh
#
# Environment:
#   NAMESPACE      the example's namespace (default bookstore; created and labelled if needed)
#   SKIP_INSTALL=1 the mesh is already installed (skip `kubectl apply -f deploy/install.yaml`)
#   IMAGE          the examples image (default ghcr.io/trellis-mesh/trellis/examples:<package version>)
#   TIMEOUT        how long to wait for a rollout (default 300s)
#   CLEANUP=1      delete the namespace at the end
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
NAMESPACE="${NAMESPACE:-bookstore}"
TIMEOUT="${TIMEOUT:-300s}"
DEFAULT_IMAGE="ghcr.io/trellis-mesh/trellis/examples:0.1.0"
IMAGE="${IMAGE:-$DEFAULT_IMAGE}"
STEP="start"

step() {
  STEP="$1"
  printf '\n\033[1m== %s\033[0m\n' "$1"
}
run() {
  printf '$ %s\n' "$*"
  "$@"
}
fail() {
  printf '\nwalkthrough: FAILED at "%s": %s\n' "$STEP" "$*" >&2
  exit 1
}
trap 'fail "a command exited with status $? (see its output above)"' ERR

command -v kubectl >/dev/null || fail "kubectl is not on PATH"
k() { kubectl -n "$NAMESPACE" "$@"; }

# Runs GET /call on the frontend (inside its pod, with the node of the image), prints a summary line and
# evaluates CHECK, a JavaScript expression over `s` (the /call JSON: examples/kubernetes/apps/load.ts) and
# `pct(version)` (the percentage of calls that version answered); exits non-zero when it is false.
CALL_JS='
const [query, check] = process.argv.slice(1);
fetch(`http://127.0.0.1:8080/call?${query}`).then(async (r) => {
  const s = await r.json();
  if (r.status !== 200) { console.error(JSON.stringify(s)); process.exit(2); }
  const pct = (v) => (100 * (s.byVersion[v] ?? 0)) / s.calls;
  const split = Object.keys(s.byVersion).sort().map((v) => `${v} ${pct(v).toFixed(1)}%`).join(", ");
  console.log(`${s.calls} calls in ${s.durationMs} ms: ${split || "no answer"}; failures ${JSON.stringify(s.failures)}; ` +
    `ratings failures ${JSON.stringify(s.ratingsFailures)}; retries ${s.retries}; p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms`);
  console.log(`  reviews saw callers ${JSON.stringify(s.callers.reviews)}; ratings saw callers ${JSON.stringify(s.callers.ratings)}`);
  if (!eval(check)) { console.error(`check failed: ${check}`); process.exit(1); }
}).catch((e) => { console.error(String(e)); process.exit(2); });'
call() {
  local query="$1" check="$2"
  printf '$ GET frontend /call?%s   (expect: %s)\n' "$query" "$check"
  k exec deploy/frontend -c frontend -- node -e "$CALL_JS" "$query" "$check" || fail "GET /call?$query: expected $check"
}
# Retries `call` until its check holds (a change needs a moment to reach every client), at most ~60 s.
call_until() {
  local query="$1" check="$2" i
  for i in $(seq 1 30); do
    if k exec deploy/frontend -c frontend -- node -e "$CALL_JS" "$query" "$check" >/dev/null 2>&1; then
      call "$query" "$check"
      return
    fi
    sleep 2
  done
  call "$query" "$check"
}
apply() {
  if [ "$IMAGE" = "$DEFAULT_IMAGE" ]; then
    local args=() f
    for f in "$@"; do args+=(-f "$f"); done
    run kubectl apply -n "$NAMESPACE" "${args[@]}"
  else
    printf '$ sed s#%s#%s# %s | kubectl apply -n %s -f -\n' "$DEFAULT_IMAGE" "$IMAGE" "$*" "$NAMESPACE"
    cat "$@" | sed "s#$DEFAULT_IMAGE#$IMAGE#g" | kubectl apply -n "$NAMESPACE" -f -
  fi
}

step "0. the cluster"
run kubectl version || fail "no cluster answers (is KUBECONFIG set?)"

step "1. install Trellis"
if [ "${SKIP_INSTALL:-}" = 1 ]; then
  echo "SKIP_INSTALL=1: using the installed control plane"
else
  run kubectl apply --server-side -f "$root/deploy/install.yaml"
fi
run kubectl -n trellis-system rollout status deployment/trellisd --timeout="$TIMEOUT" ||
  fail "the control plane (trellis-system/trellisd) did not become ready"

step "2. a namespace with injection enabled"
kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 || run kubectl create namespace "$NAMESPACE"
run kubectl label namespace "$NAMESPACE" trellis.dev/inject=enabled --overwrite

step "3. deploy the example (frontend → reviews v1/v2/v3 → ratings, proxyless; details with Envoy)"
apply "$here/app/serviceaccounts.yaml" "$here/app/ratings.yaml" "$here/app/reviews.yaml" \
  "$here/app/frontend.yaml" "$here/app/details.yaml"
for d in ratings reviews-v1 reviews-v2 reviews-v3 frontend; do
  run kubectl -n "$NAMESPACE" rollout status "deployment/$d" --timeout="$TIMEOUT" ||
    fail "deployment/$d did not become ready (kubectl -n $NAMESPACE describe pods -l app=${d%-v*})"
done
run kubectl -n "$NAMESPACE" get pods -o wide
# trellis-proxy is a native sidecar (an init container) from Kubernetes 1.29, a regular container before.
containers="$(k get pods -l app=frontend -o jsonpath='{.items[0].spec.initContainers[*].name} {.items[0].spec.containers[*].name}')"
case " $containers " in *" trellis-proxy "*) echo "frontend is injected: $containers" ;; *) fail "frontend has no trellis-proxy ($containers)" ;; esac
echo "details (Envoy template): the pod is injected; it becomes Ready only where the proxy image has Envoy"

step "4. first calls (PERMISSIVE: proxyless servers serve plaintext)"
call_until "n=100" "s.ok === 100"

step "5. STRICT mutual TLS: every server sees its caller's SPIFFE ID"
apply "$here/routing/mtls-strict.yaml"
call_until "n=100" "s.ok === 100 && s.callers.reviews['spiffe://cluster.local/ns/$NAMESPACE/sa/frontend'] === 100 && s.callers.ratings['spiffe://cluster.local/ns/$NAMESPACE/sa/reviews'] === 100"

step "6. canary: reviews 80 % v1, 20 % v2"
apply "$here/routing/reviews-subsets.yaml" "$here/routing/canary-80-20.yaml"
call_until "n=100" "!s.byVersion.v3"
call "n=1000&concurrency=20" "s.ok === 1000 && Math.abs(pct('v1') - 80) <= 5 && Math.abs(pct('v2') - 20) <= 5"

step "7. canary, next step: 50/50"
apply "$here/routing/canary-50-50.yaml"
call_until "n=1000&concurrency=20" "s.ok === 1000 && Math.abs(pct('v1') - 50) <= 5 && Math.abs(pct('v2') - 50) <= 5"

step "8. header routing: end-user jason → v3, everyone else → v1"
apply "$here/routing/header-routing.yaml"
call_until "n=100&user=jason" "s.byVersion.v3 === 100"
call "n=100" "s.byVersion.v1 === 100"

step "9. retries: ratings fails every second call"
run kubectl -n "$NAMESPACE" set env deployment/ratings RATINGS_FAIL_EVERY=2 RATINGS_DELAY_MS=0
run kubectl -n "$NAMESPACE" rollout status deployment/ratings --timeout="$TIMEOUT"
apply "$here/routing/no-retries.yaml"
call_until "n=40&concurrency=1" "s.ratingsFailures.UNAVAILABLE === 20"
apply "$here/routing/retries-timeouts.yaml"
call_until "n=40&concurrency=1" "s.ok === 40 && !s.ratingsFailures.UNAVAILABLE && s.retries >= 39"

step "10. timeout: ratings answers after 2 s, the route gives it 1 s"
run kubectl -n "$NAMESPACE" set env deployment/ratings RATINGS_FAIL_EVERY=0 RATINGS_DELAY_MS=2000
run kubectl -n "$NAMESPACE" rollout status deployment/ratings --timeout="$TIMEOUT"
call_until "n=5&concurrency=5&deadlineMs=10000" "s.ok === 5 && s.ratingsFailures.DEADLINE_EXCEEDED === 5"

step "11. back to normal"
run kubectl -n "$NAMESPACE" set env deployment/ratings RATINGS_FAIL_EVERY=0 RATINGS_DELAY_MS=0
run kubectl -n "$NAMESPACE" delete virtualservices.networking.trellis.dev ratings
run kubectl -n "$NAMESPACE" rollout status deployment/ratings --timeout="$TIMEOUT"
call_until "n=100" "s.ok === 100 && Object.keys(s.ratingsFailures).length === 0"

if [ "${CLEANUP:-}" = 1 ]; then
  step "12. clean up"
  run kubectl delete namespace "$NAMESPACE" --wait=false
fi
trap - ERR
printf '\nwalkthrough: every step passed (namespace %s)\n' "$NAMESPACE"
