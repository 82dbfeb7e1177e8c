#!/usr/bin/env bash
# Select (or create) the stack and, on Pulumi Cloud, import the ESC environment that holds its cluster credential.
# Run by .github/actions/pulumi; inputs come as STACK, BACKEND (cloud|local), ESC_ENVIRONMENT, CREATE and
# CLUSTER_CREDENTIAL (false: a job that only reads stack outputs, e.g. promote, needs no kubeconfig).
set -euo pipefail

if [ "$CREATE" = "true" ]; then
  if [ "$BACKEND" = "local" ]; then
    pulumi stack select --create "$STACK" --secrets-provider passphrase
  else
    pulumi stack select --create "$STACK"
  fi
else
  pulumi stack select "$STACK"
fi

if [ "$BACKEND" = "cloud" ] && [ "${CLUSTER_CREDENTIAL:-true}" = "true" ]; then
  environment="$ESC_ENVIRONMENT"
  if [ -z "$environment" ]; then
    case "$STACK" in
      pr-*) environment="commerce-platform/dev" ;; # review stacks run on dev's cluster
      *) environment="commerce-platform/$STACK" ;;
    esac
  fi
  # Written on the runner only (the committed Pulumi.<stack>.yaml stays usable with a file backend).
  if ! grep -qsF -- "- $environment" "Pulumi.$STACK.yaml"; then
    pulumi config env add "$environment" --stack "$STACK" --yes > /dev/null
  fi
  echo "stack $STACK: cluster credential from ESC environment $environment"
fi
