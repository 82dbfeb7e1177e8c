// Command pulumi-language-python is this repo's Python language host for the Pulumi engine.
//
// Upstream's host (module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) is not served by
// the module proxy this repo builds from, so the engine's toolchain carries this one instead: the same gRPC
// contract (pulumirpc.LanguageRuntime), reduced to what running this repo's program and policy pack needs.
//
//   - Run: starts the stack's Python (the project's virtualenv, see pythonFor) on the program runner module
//     (commerce_platform.engine.runner, overridable with PULUMI_PYTHON_RUNNER_MODULE), which configures the Pulumi
//     Python SDK with the monitor/engine addresses and runs the program's __main__.
//   - RunPlugin: runs a Python policy pack (`python -u -m pulumi.policy <args> <pack dir>`) behind the SDK's
//     PolicyProxy, which hands the pack the stack's configuration, as the CLI expects of a Python host.
//   - GetRequiredPackages / GetRequiredPlugins: none. Plugins are installed ahead of time by `ops engine build`
//     (PULUMI_HOME in its cache), and the engine loads the provider the program registers.
//
// Dependencies are never installed by this host: the project's environment is made by `uv sync`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	defaultRunnerModule = "commerce_platform.engine.runner"
	// The runner exits with this code after it reported the error to the engine itself.
	exitAfterReportedError = 32
)

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
	tracing       string
}

// pythonFor is the interpreter for a project (or policy pack) root: its runtime `virtualenv` option (relative to
// the root), else `.venv` under the root for the uv toolchain, else an active $VIRTUAL_ENV, else python3 on PATH.
func pythonFor(root string, options map[string]any) (string, []string) {
	venv, _ := options["virtualenv"].(string)
	if venv == "" {
		if tc, _ := options["toolchain"].(string); tc == "uv" {
			venv = ".venv"
			if env := os.Getenv("UV_PROJECT_ENVIRONMENT"); env != "" {
				venv = env
			}
		}
	}
	if venv != "" && !filepath.IsAbs(venv) {
		venv = filepath.Join(root, venv)
	}
	if venv == "" {
		venv = os.Getenv("VIRTUAL_ENV")
	}
	env := os.Environ()
	if venv == "" {
		return "python3", env
	}
	bin := filepath.Join(venv, "bin")
	env = append(env, "VIRTUAL_ENV="+venv, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return filepath.Join(bin, "python"), env
}

func options(info *pulumirpc.ProgramInfo) map[string]any {
	if info == nil || info.Options == nil {
		return map[string]any{}
	}
	return info.Options.AsMap()
}

func exitCode(err error) (int, bool) {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok {
			return status.ExitStatus(), true
		}
	}
	return 0, false
}

func (h *host) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.EngineAddress
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *host) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) GetProgramDependencies(
	context.Context, *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	python, _ := pythonFor(req.GetInfo().GetRootDirectory(), options(req.GetInfo()))
	return &pulumirpc.AboutResponse{Executable: python}, nil
}

func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	msg := "dependencies come from the project's uv environment (uv sync); nothing to install\n"
	return server.Send(&pulumirpc.InstallDependenciesResponse{Stdout: []byte(msg)})
}

func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	python, env := pythonFor(info.GetRootDirectory(), options(info))
	module := os.Getenv("PULUMI_PYTHON_RUNNER_MODULE")
	if module == "" {
		module = defaultRunnerModule
	}
	args := []string{"-u", "-m", module}
	add := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engineAddress)
	add("project", req.GetProject())
	add("root_directory", info.GetRootDirectory())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", strconv.FormatBool(req.GetDryRun()))
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", h.tracing)
	add("organization", req.GetOrganization())
	args = append(args, info.GetEntryPoint())
	args = append(args, req.GetArgs()...)

	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("serializing the stack configuration: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	keys, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serializing the secret configuration keys: %w", err)
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(env, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(keys))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if code, ok := exitCode(err); ok {
			if code == exitAfterReportedError {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with non-zero exit code: %d", code)}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run %s: %v", python, err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	ctx := server.Context()
	info := req.GetInfo()
	python, env := pythonFor(info.GetRootDirectory(), options(info))
	var args []string
	analyzer := req.GetKind() == "analyzer"
	if analyzer {
		args = append(append([]string{"-u", "-m", "pulumi.policy"}, req.GetArgs()...), info.GetProgramDirectory())
	} else {
		args = append([]string{info.GetProgramDirectory()}, req.GetArgs()...)
	}
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()

	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = req.GetPwd()
	var proxy *sdk.PolicyProxy
	if analyzer {
		// Policy packs run in their own folder and read the stack's configuration from the environment, which
		// the proxy learns from the engine's ConfigureStack call before the pack starts.
		cmd.Dir = info.GetProgramDirectory()
		proxy, stdout, err = sdk.NewPolicyProxy(ctx, stdout)
		if err != nil {
			return fmt.Errorf("starting the policy pack proxy: %w", err)
		}
		stack, err := proxy.AwaitConfiguration(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the stack configuration: %w", err)
		}
		if stack != nil {
			set := func(k, v string) {
				if v != "" {
					env = append(env, k+"="+v)
				}
			}
			set("PULUMI_ORGANIZATION", stack.Organization)
			set("PULUMI_PROJECT", stack.Project)
			set("PULUMI_STACK", stack.Stack)
			set("PULUMI_DRY_RUN", strconv.FormatBool(stack.DryRun))
			if stack.Config != nil {
				config, err := json.Marshal(stack.Config)
				if err != nil {
					return fmt.Errorf("serializing the stack configuration: %w", err)
				}
				set("PULUMI_CONFIG", string(config))
			}
		}
	}
	cmd.Env = append(env, req.GetEnv()...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("could not run %s: %w", python, err)
	}
	if proxy != nil {
		if err := proxy.Attach(ctx, cmd); err != nil {
			return fmt.Errorf("attaching the policy pack: %w", err)
		}
		return closer.Close()
	}
	if err := cmd.Wait(); err != nil {
		if code, ok := exitCode(err); ok {
			return server.Send(&pulumirpc.RunPluginResponse{
				Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)}, //nolint:gosec // 8-bit code
			})
		}
		return fmt.Errorf("plugin exited unexpectedly: %w", err)
	}
	return closer.Close()
}

func main() {
	showVersion := false
	tracing := ""
	args := os.Args[1:]
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
		switch {
		case args[0] == "-version" || args[0] == "--version":
			showVersion = true
		case (args[0] == "-tracing" || args[0] == "--tracing") && len(args) > 1:
			tracing = args[1]
			args = args[1:]
		}
		args = args[1:]
	}
	if showVersion {
		fmt.Println(version.Version)
		return
	}
	h := &host{tracing: tracing}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cancel := make(chan bool)
	go func() {
		<-ctx.Done()
		close(cancel)
	}()
	if len(args) > 0 {
		// The engine address, for the health check that ends this host when the engine goes away.
		h.engineAddress = args[0]
		if err := rpcutil.Healthcheck(ctx, h.engineAddress, 5*time.Minute, stop); err != nil {
			fmt.Fprintf(os.Stderr, "pulumi-language-python: health check: %v\n", err)
			os.Exit(1)
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}
