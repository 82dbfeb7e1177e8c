//go:build tools

// Package tools pins the Pulumi engine: `go build` of these packages from this module
// builds exactly the versions in go.mod / go.sum.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
