package main

// The real binary: built once, static, and its exit status.

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0xef53/go-qmp/v2/qmptest"
)

var (
	buildOnce sync.Once
	binDir    string // removed by TestMain
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// shellBinary builds qmp-shell as a user would (CGO_ENABLED=0 go build)
// once per test run and returns its path.
func shellBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building the binary")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "qmp-shell-test")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "qmp-shell")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// go test puts its own GOROOT/bin first in PATH: the same go.
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("CGO_ENABLED=0 go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestStaticBinary: the binary needs no dynamic loader and no shared
// library, so it runs on a machine with nothing installed.
func TestStaticBinary(t *testing.T) {
	f, err := elf.Open(shellBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("program header %v: the binary is dynamically linked", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Fatalf("imported libraries %q (%v)", libs, err)
	}
}

// runBinary runs the binary with stdin, killing it after 20s.
func runBinary(t *testing.T, stdin string, args ...string) shellRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shellBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "QMP_SOCKET=")
	err := cmd.Run()
	r := shellRun{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("qmp-shell %q still running after 20s; stdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

func TestBinaryExitStatus(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	r := runBinary(t, "query-name\nnosuch\nquery-name\n", s.Path())
	r.expect(t, 1, `{"return": {}}
{"error": {"class": "CommandNotFound", "desc": "The command nosuch has not been found"}}
`)
	r = runBinary(t, "", s.Path(), "query-name")
	r.expect(t, 0, `{"return": {}}`+"\n")
	r = runBinary(t, "")
	if r.code != 2 || !strings.Contains(r.stderr, "usage: qmp-shell") {
		t.Fatalf("no socket: exit %d, stderr %q", r.code, r.stderr)
	}
}
