#!/usr/bin/env bash
# The dev stack on a local kind cluster, end to end, in one script: the README's local path and what kind.yml runs.
#
#   .github/kind/up.sh          # from the repo root; needs docker, kubectl, curl, jq, the pulumi CLI and kind
#   .github/kind/up.sh down     # delete the cluster and the registry container
#
# 1. pinned kind and node image; containerd `config_path` + a hosts.toml for the local registry
# 2. a local registry (localhost:5001 on the host, kind-registry:5000 inside the kind network)
# 3. stack `dev` on a file backend under .local/ with a passphrase, pointed at the kind context; its secrets
#    generated into the local stack config (.github/scripts/stack_secrets.py --store config)
# 4. `pulumi up` of dev with the policy pack: images built from services/Dockerfile (build args SERVICE, PORT) and pushed to the local registry
#    (stack setting imageRepository, in place of environments/dev.yaml's image_repository), the cluster add-ons
#    (metrics-server, Traefik as the ingress controller) as the stack's pinned Helm releases
# It sets kubeContext and imageRepository in Pulumi.dev.yaml: `git checkout Pulumi.dev.yaml` undoes that.
# 5. a smoke test through the Ingress host: register, log in, create a product (admin), place an order, and wait
#    until the order completes, every request to http://dev.commerce.example.com:8080 (Traefik, NodePort 30080).
set -euo pipefail

KIND_VERSION="v0.33.0" # go install sigs.k8s.io/kind@v0.33.0
# kind v0.33.0's default node image (sigs.k8s.io/kind pkg/apis/config/defaults/image.go), pinned by digest.
NODE_IMAGE="kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
REGISTRY_IMAGE="registry:2.8.3"
CLUSTER="commerce"
REGISTRY_NAME="kind-registry"
REGISTRY_PORT="5001"
HOST="dev.commerce.example.com"
INGRESS="127.0.0.1:8080"
STACK="dev"

cd "$(dirname "$0")/../.."
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.local/pulumi-state}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-kind-local-only}" # guards throw-away secrets

say() { printf '\n== %s\n' "$*"; }

if [ "${1:-}" = "down" ]; then
  kind delete cluster --name "$CLUSTER" || true
  docker rm -f "$REGISTRY_NAME" || true
  exit 0
fi

say "tools"
for tool in docker kubectl curl jq pulumi kind; do
  command -v "$tool" > /dev/null || { echo "up.sh: $tool is not on PATH" >&2; exit 2; }
done
if ! kind version | grep -q "kind ${KIND_VERSION} "; then
  echo "up.sh: kind ${KIND_VERSION} is pinned, found: $(kind version); run: go install sigs.k8s.io/kind@${KIND_VERSION}" >&2
  exit 2
fi
./.ci/ops --help > /dev/null # uv and the locked environment (.venv), for Pulumi's uv toolchain too
export PATH="$PWD/.local/bootstrap/bin:$PATH"

say "local registry ${REGISTRY_NAME} on localhost:${REGISTRY_PORT}"
if [ "$(docker inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2> /dev/null || true)" != "true" ]; then
  docker run -d --restart=always -p "127.0.0.1:${REGISTRY_PORT}:5000" --network bridge --name "$REGISTRY_NAME" \
    "$REGISTRY_IMAGE"
fi

say "kind cluster ${CLUSTER} (${NODE_IMAGE%@*})"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --config .github/kind/cluster.yaml --wait 120s
fi
# containerd: localhost:5001 inside the nodes is the registry container on the kind network.
for node in $(kind get nodes --name "$CLUSTER"); do
  docker exec "$node" mkdir -p "/etc/containerd/certs.d/localhost:${REGISTRY_PORT}"
  printf '[host."http://%s:5000"]\n' "$REGISTRY_NAME" \
    | docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/localhost:${REGISTRY_PORT}/hosts.toml"
done
if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$REGISTRY_NAME")" = "null" ]; then
  docker network connect kind "$REGISTRY_NAME"
fi
# KEP-1755: tell cluster tooling where the local registry is.
kubectl --context "kind-${CLUSTER}" apply -f - << YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:${REGISTRY_PORT}"
YAML

say "stack ${STACK} on ${PULUMI_BACKEND_URL}"
mkdir -p .local/pulumi-state
pulumi stack select --create "$STACK" --secrets-provider passphrase
pulumi config set --stack "$STACK" kubeContext "kind-${CLUSTER}"
pulumi config set --stack "$STACK" imageRepository "localhost:${REGISTRY_PORT}/commerce"
.venv/bin/python .github/scripts/stack_secrets.py "$STACK" --store config

say "offline checks, then pulumi up"
./.ci/ops render "$STACK"
./.ci/ops policy "$STACK"
pulumi up --yes --skip-preview --refresh --stack "$STACK" --policy-pack platform/policy

say "smoke test through the Ingress host ${HOST} (${INGRESS})"
namespace="$(pulumi config get --stack "$STACK" namespace)"
kubectl --context "kind-${CLUSTER}" -n "$namespace" wait --for=condition=Available deployment --all --timeout=300s
api() { curl -fsS --retry 10 --retry-delay 3 --retry-connrefused --resolve "${HOST}:${INGRESS##*:}:${INGRESS%:*}" "$@"; }
base="http://${HOST}:${INGRESS##*:}"
api "$base/users/" -H 'content-type: application/json' \
  -d '{"username": "kind-smoke", "email": "kind-smoke@example.com", "password": "kind-smoke-password-1"}' \
  -o /dev/null -w 'register: %{http_code}\n' || true # 409 on a second run is fine
token="$(api "$base/token" -d 'username=kind-smoke&password=kind-smoke-password-1' | jq -r .access_token)"
admin_password="$(pulumi config get --stack "$STACK" adminPassword)"
admin="$(api "$base/token" --data-urlencode "username=$(pulumi config get --stack "$STACK" adminUsername)" \
  --data-urlencode "password=${admin_password}" | jq -r .access_token)"
product="$(api "$base/products/" -H "authorization: Bearer ${admin}" -H 'content-type: application/json' \
  -d '{"name": "kind smoke widget", "price": "9.99", "stock": 5}' | jq -r .id)"
order="$(api "$base/orders/" -H "authorization: Bearer ${token}" -H 'content-type: application/json' \
  -d "{\"product_id\": ${product}, \"quantity\": 1, \"shipping_address\": \"1 Main St, Springfield\"}")"
order_id="$(jq -r .id <<< "$order")"
for _ in $(seq 1 30); do
  status="$(api "$base/orders/${order_id}" -H "authorization: Bearer ${token}" | jq -r .status)"
  [ "$status" = "completed" ] && break
  sleep 2
done
echo "order ${order_id}: ${status}"
[ "$status" = "completed" ] || { echo "up.sh: the order did not complete" >&2; exit 1; }
echo "dev on kind is up: ${base} (curl --resolve ${HOST}:${INGRESS##*:}:${INGRESS%:*} ...)"
