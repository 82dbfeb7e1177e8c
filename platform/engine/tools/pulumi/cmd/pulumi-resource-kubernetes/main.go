// Command pulumi-resource-kubernetes serves the Kubernetes provider of
// github.com/pulumi/pulumi-kubernetes/provider/v4 (the version pinned in go.mod).
//
// Upstream's own main package embeds schema-embed.json and terraform-mapping-embed.json,
// files its Makefile generates and the module does not ship, so it cannot be built from
// the module. This main serves the same provider with the schema read at start-up from
// the files `ops engine build` writes next to the binary (the module's schema.json with
// its version set, exactly what upstream's generate.go does).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

func readBeside(name string) []byte {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-kubernetes: %v\n", err)
		os.Exit(1)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(exe), name))
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-kubernetes: %v (run `ops engine build`)\n", err)
		os.Exit(1)
	}
	return data
}

func main() {
	provider.Serve("kubernetes", version.Version,
		readBeside("schema-embed.json"), readBeside("terraform-mapping-embed.json"))
}
