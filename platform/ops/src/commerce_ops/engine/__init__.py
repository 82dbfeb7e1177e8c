"""The real Pulumi engine and a local Kubernetes control plane, built from pinned Go modules (`ops engine`,
`ops cluster`); see toolchain.py and cluster.py."""
