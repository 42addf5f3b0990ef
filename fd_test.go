//go:build unix

package qmp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// openFDCount is the number of descriptors this process has open on the
// pipes the current test made with testPipe: the caller's ends, our
// duplicates, and the fake server's copies (it lives in this process). Only
// those pipes count, so descriptors that other tests' clean-up opens or
// closes meanwhile cannot disturb the figure.
func openFDCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open descriptors: %v", err)
	}
	pipesMu.Lock()
	mine := testPipes[t]
	pipesMu.Unlock()
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && mine[target] {
			n++
		}
	}
	return n
}

var (
	pipesMu   sync.Mutex
	testPipes = map[*testing.T]map[string]bool{} // the /proc link targets ("pipe:[ino]") of each test's pipes
)

// testPipe returns a pipe whose ends are closed at the end of the test.
func testPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Not r.Fd(): it would switch the pipe to blocking mode, and tests set
	// read deadlines on it.
	var target string
	var lerr error
	rc, err := r.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { target, lerr = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)) })
	}
	if err == nil {
		err = lerr
	}
	if err != nil {
		t.Skipf("cannot identify the pipe: %v", err)
	}
	pipesMu.Lock()
	if testPipes[t] == nil {
		testPipes[t] = map[string]bool{}
	}
	testPipes[t][target] = true
	pipesMu.Unlock()
	if n := openFDCount(t); n < 2 {
		t.Fatalf("openFDCount sees %d descriptors of a new pipe, want at least 2", n)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
		pipesMu.Lock()
		delete(testPipes, t)
		pipesMu.Unlock()
	})
	return r, w
}

// heldGate is a fake-server handler that reports each call on entered and
// holds its reply until open is called (at the latest in Cleanup, which
// runs before the server's Close). It claims and closes an fd that came
// with the request at once, so the process's descriptor count does not
// depend on when the reply is released.
type heldGate struct {
	ret     any
	entered chan *qmptest.Request
	release chan struct{}
	once    sync.Once
}

func newHeldGate(t *testing.T, ret any) *heldGate {
	g := &heldGate{ret: ret, entered: make(chan *qmptest.Request, 64), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *heldGate) open() { g.once.Do(func() { close(g.release) }) }

func (g *heldGate) handle(_ *qmptest.Server, r *qmptest.Request) qmptest.Reply {
	if r.FD != nil {
		r.FD.Close()
		r.FD = nil
	}
	g.entered <- r
	<-g.release
	return qmptest.Reply{Return: g.ret}
}

// wait returns the next request the handler got, failing after d.
func (g *heldGate) wait(t *testing.T, d time.Duration) *qmptest.Request {
	t.Helper()
	select {
	case r := <-g.entered:
		return r
	case <-time.After(d):
		t.Fatalf("held handler not called within %v", d)
		return nil
	}
}

// requestNames lists the names of reqs in order.
func requestNames(reqs []qmptest.Request) []string {
	names := make([]string, len(reqs))
	for i, r := range reqs {
		names[i] = r.Name
	}
	return names
}

// countNamed counts the requests named name.
func countNamed(reqs []qmptest.Request, name string) int {
	n := 0
	for _, r := range reqs {
		if r.Name == name {
			n++
		}
	}
	return n
}

// wantGenericError fails unless err is exactly QEMU's *GenericError with
// class GenericError and description desc.
func wantGenericError(t *testing.T, what string, err error, desc string) {
	t.Helper()
	var ge *qmp.GenericError
	if !errors.As(err, &ge) {
		t.Fatalf("%s: got %T %v, want *qmp.GenericError %q", what, err, err, desc)
	}
	if ge.Class != "GenericError" || ge.Desc != desc {
		t.Fatalf("%s: got {%s %q}, want {GenericError %q}", what, ge.Class, ge.Desc, desc)
	}
}

func TestGetFDPassesADuplicate(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	r, w := testPipe(t)
	ctx := ctxT(t, 5*time.Second)

	before := openFDCount(t)
	if err := m.GetFD(ctx, "pipe-w", w); err != nil {
		t.Fatalf("GetFD: %v", err)
	}
	// Exactly one more descriptor: the server's copy; ours was closed.
	if got := openFDCount(t); got != before+1 {
		t.Fatalf("open fds after GetFD = %d, want %d (the server's copy only)", got, before+1)
	}
	got := s.FD("pipe-w")
	if got == nil {
		t.Fatal("server has no fd named pipe-w")
	}
	if _, err := got.Write([]byte("via server;")); err != nil {
		t.Fatalf("writing through the server's copy: %v", err)
	}
	// The caller's file stays open and usable.
	if _, err := w.Write([]byte("via caller")); err != nil {
		t.Fatalf("writing through the caller's file after GetFD: %v", err)
	}
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(r, buf, len("via server;via caller"))
	if err != nil || string(buf[:n]) != "via server;via caller" {
		t.Fatalf("read %q, %v from the pipe; want both writes", buf[:n], err)
	}

	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.Name != "getfd" || string(last.Arguments) != `{"fdname":"pipe-w"}` || last.FD == nil {
		t.Fatalf("server got %s %s (fd %v), want getfd {\"fdname\":\"pipe-w\"} with an fd", last.Name, last.Arguments, last.FD != nil)
	}
	if n := s.ReceivedFDs(); n != 1 {
		t.Fatalf("ReceivedFDs = %d, want 1", n)
	}

	if err := m.CloseFD(ctx, "pipe-w"); err != nil {
		t.Fatalf("CloseFD: %v", err)
	}
	if s.FD("pipe-w") != nil {
		t.Fatal("server still holds pipe-w after CloseFD")
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after CloseFD = %d, want %d", got, before)
	}
	err = m.CloseFD(ctx, "pipe-w")
	wantGenericError(t, "second CloseFD", err, "File descriptor named 'pipe-w' not found")
}

func TestGetFDErrors(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	_, w := testPipe(t)
	ctx := ctxT(t, 5*time.Second)

	before := openFDCount(t)
	err := m.GetFD(ctx, "1st", w)
	wantGenericError(t, "GetFD(1st)", err, "Parameter 'fdname' expects a name not starting with a digit")
	// The server closes an fd its command did not claim before replying,
	// and our duplicate is closed once sent.
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after a rejected GetFD = %d, want %d", got, before)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatalf("caller's file unusable after a rejected GetFD: %v", err)
	}

	// getfd without an fd, as QEMU answers it.
	err = m.RunContext(ctx, qmp.Command{"getfd", map[string]string{"fdname": "nofd"}}, nil)
	wantGenericError(t, "getfd without an fd", err, "No file descriptor supplied via SCM_RIGHTS")
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; last.Name != "getfd" || last.FD != nil {
		t.Fatalf("last request %s carried an fd: %v", last.Name, last.FD != nil)
	}
	if n := s.ReceivedFDs(); n != 1 {
		t.Fatalf("ReceivedFDs = %d, want 1 (only the rejected GetFD)", n)
	}

	if err := m.RunWithFile(ctx, qmp.Command{"getfd", nil}, nil, nil); err == nil {
		t.Fatal("RunWithFile with a nil file: no error")
	}
	if n := len(s.Requests()); n != len(reqs) {
		t.Fatalf("RunWithFile with a nil file sent something: %d requests, want %d", n, len(reqs))
	}
}

// A caller that gives up while waiting for its turn to pass an fd leaves
// nothing open and sends nothing.
func TestGetFDCancelledBeforeSendLeaksNothing(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	g := newHeldGate(t, nil)
	s.Handle("getfd", g.handle)
	m := dial(t, s, nil)
	_, w := testPipe(t)

	first := make(chan error, 1)
	go func() { first <- m.GetFD(ctxT(t, 5*time.Second), "first", w) }()
	g.wait(t, 5*time.Second) // the first getfd holds the fd slot until its reply

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := m.GetFD(ctx, "second", w); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetFD waiting for the fd slot: got %v, want context.DeadlineExceeded", err)
	}

	g.open()
	if err := <-first; err != nil {
		t.Fatalf("first GetFD: %v", err)
	}
	// A command after it proves the cancelled one was never written.
	if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{"query-status", nil}, nil); err != nil {
		t.Fatal(err)
	}
	names := requestNames(s.Requests())
	if want := []string{"qmp_capabilities", "getfd", "query-status"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("server got %v, want %v", names, want)
	}
	if n := s.ReceivedFDs(); n != 1 {
		t.Fatalf("ReceivedFDs = %d, want 1", n)
	}
	// Counted only now: the writer closes the first getfd's duplicate
	// after its sendmsg returns, which can be after the server has it, but
	// always before it writes the query-status answered above; the server
	// closed its copy before replying. Only the pipe's two ends are left.
	if got := openFDCount(t); got != 2 {
		t.Fatalf("open fds at the end = %d, want 2 (the pipe's ends): the cancelled GetFD left one open", got)
	}
}

// The same when the fd was already duplicated and the caller gives up
// waiting for an in-flight slot (Options.MaxInFlight).
func TestGetFDCancelledWaitingForInFlightSlotLeaksNothing(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	g := newHeldGate(t, nil)
	s.Handle("block", g.handle)
	m := dial(t, s, &qmp.Options{MaxInFlight: 1})
	_, w := testPipe(t)

	held := make(chan error, 1)
	go func() { held <- m.RunContext(ctxT(t, 5*time.Second), qmp.Command{"block", nil}, nil) }()
	g.wait(t, 5*time.Second)

	before := openFDCount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := m.GetFD(ctx, "w", w); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetFD waiting for an in-flight slot: got %v, want context.DeadlineExceeded", err)
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after the cancelled GetFD = %d, want %d", got, before)
	}

	g.open()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// The fd slot was given back: the next GetFD goes through.
	if err := m.GetFD(ctxT(t, 5*time.Second), "w", w); err != nil {
		t.Fatalf("GetFD after the cancelled one: %v", err)
	}
	names := requestNames(s.Requests())
	if want := []string{"qmp_capabilities", "block", "getfd"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("server got %v, want %v", names, want)
	}
	if n := s.ReceivedFDs(); n != 1 {
		t.Fatalf("ReceivedFDs = %d, want 1", n)
	}
}

// Neither a GetFD pending when the connection drops nor one made after the
// monitor closed leaves a descriptor open.
func TestGetFDConnectionEndLeaksNothing(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	g := newHeldGate(t, nil)
	s.Handle("getfd", g.handle)
	_, w := testPipe(t)
	before := openFDCount(t) // before the connection exists

	m := dial(t, s, nil)
	pending := make(chan error, 1)
	go func() { pending <- m.GetFD(ctxT(t, 5*time.Second), "pending", w) }()
	g.wait(t, 5*time.Second)
	s.DropConnection()
	waitClosed(t, m, 5*time.Second)
	if err := <-pending; !qmp.IsSocketClosed(err) {
		t.Fatalf("pending GetFD after the connection dropped: got %v, want a closed error", err)
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after the connection dropped = %d, want %d", got, before)
	}

	m.Close()
	if err := m.GetFD(ctxT(t, 5*time.Second), "late", w); !errors.Is(err, qmp.ErrClosed) {
		t.Fatalf("GetFD after Close: got %v, want qmp.ErrClosed", err)
	}
	if _, err := m.AddFD(ctxT(t, 5*time.Second), w, nil); !errors.Is(err, qmp.ErrClosed) {
		t.Fatalf("AddFD after Close: got %v, want qmp.ErrClosed", err)
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after GetFD on a closed monitor = %d, want %d", got, before)
	}
	if n := s.ReceivedFDs(); n != 1 {
		t.Fatalf("ReceivedFDs = %d, want 1", n)
	}
}

func TestFDPassingOverTCPUnsupported(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	addr := proxyQMP(t, "tcp", "127.0.0.1:0", s.Path())
	m, err := qmp.Dial(ctxT(t, 5*time.Second), "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	_, w := testPipe(t)
	ctx := ctxT(t, 5*time.Second)

	before := openFDCount(t)
	if err := m.GetFD(ctx, "w", w); !errors.Is(err, qmp.ErrFDPassingUnsupported) {
		t.Fatalf("GetFD over TCP: got %v, want ErrFDPassingUnsupported", err)
	}
	if _, err := m.AddFD(ctx, w, nil); !errors.Is(err, qmp.ErrFDPassingUnsupported) {
		t.Fatalf("AddFD over TCP: got %v, want ErrFDPassingUnsupported", err)
	}
	if err := m.RunWithFile(ctx, qmp.Command{"getfd", nil}, nil, w); !errors.Is(err, qmp.ErrFDPassingUnsupported) {
		t.Fatalf("RunWithFile over TCP: got %v, want ErrFDPassingUnsupported", err)
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after refused fd passing = %d, want %d", got, before)
	}
	// Ordinary commands work, and nothing was sent before them.
	if err := m.RunContext(ctx, qmp.Command{"query-status", nil}, nil); err != nil {
		t.Fatal(err)
	}
	names := requestNames(s.Requests())
	if want := []string{"qmp_capabilities", "query-status"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("server got %v, want %v", names, want)
	}
	if n := s.ReceivedFDs(); n != 0 {
		t.Fatalf("ReceivedFDs = %d, want 0", n)
	}
}

// An fd-carrying command goes out only after the previous one's reply, while
// ordinary commands keep flowing past it.
func TestFDCommandsAreSerialised(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	g := newHeldGate(t, nil)
	// Requests the server had read when the first getfd was released: the
	// second getfd must not be among them, since it may be sent only once
	// the first one's reply (written after this handler returns) is read.
	var (
		mu        sync.Mutex
		atRelease []qmptest.Request
	)
	s.Handle("getfd", func(s *qmptest.Server, r *qmptest.Request) qmptest.Reply {
		rep := g.handle(s, r)
		mu.Lock()
		defer mu.Unlock()
		if atRelease == nil {
			atRelease = s.Requests()
		}
		return rep
	})
	m := dial(t, s, nil)
	_, w := testPipe(t)

	errs := make(chan error, 2)
	go func() { errs <- m.GetFD(ctxT(t, 5*time.Second), "a", w) }()
	g.wait(t, 5*time.Second)
	slotWait := awaitBlocking(t, "fd slot")
	go func() { errs <- m.GetFD(ctxT(t, 5*time.Second), "b", w) }()
	// The second GetFD waits for the fd slot, not yet on the wire.
	slotWait()

	// An ordinary command issued now reaches the server while the first
	// getfd is unanswered (the fake server runs it only after the getfd,
	// so it cannot be answered yet).
	status := make(chan error, 1)
	go func() { status <- m.RunContext(ctxT(t, 5*time.Second), qmp.Command{"query-status", nil}, nil) }()
	reqs, err := s.WaitRequests(3, 5*time.Second)
	if err != nil {
		t.Fatalf("ordinary command not received while a getfd was pending: %v (got %v)", err, requestNames(reqs))
	}
	if want := []string{"qmp_capabilities", "getfd", "query-status"}; !reflect.DeepEqual(requestNames(reqs), want) {
		t.Fatalf("while getfd a is pending the server got %v, want %v", requestNames(reqs), want)
	}

	g.open()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("GetFD: %v", err)
		}
	}
	if err := <-status; err != nil {
		t.Fatalf("query-status: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := countNamed(atRelease, "getfd"); n != 1 {
		t.Fatalf("server had read %v when the first getfd was answered: the second was sent before the first's reply",
			requestNames(atRelease))
	}
	reqs = s.Requests()
	if want := []string{"qmp_capabilities", "getfd", "query-status", "getfd"}; !reflect.DeepEqual(requestNames(reqs), want) {
		t.Fatalf("server got %v, want %v", requestNames(reqs), want)
	}
	if string(reqs[1].Arguments) != `{"fdname":"a"}` || string(reqs[3].Arguments) != `{"fdname":"b"}` {
		t.Fatalf("getfd arguments: %s then %s", reqs[1].Arguments, reqs[3].Arguments)
	}
}

// Ordinary commands sent concurrently with fd-carrying ones arrive without
// a descriptor: the writer never attaches an fd to another command's bytes,
// even when they share a batch.
func TestFDNotAttachedToOtherCommands(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	_, w := testPipe(t)
	ctx := ctxT(t, 5*time.Second)

	const fdCmds, workers, perWorker = 5, 4, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perWorker; j++ {
				if err := m.RunContext(ctx, qmp.Command{"query-status", nil}, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < fdCmds; i++ {
		if err := m.GetFD(ctx, "w", w); err != nil {
			t.Fatalf("GetFD %d: %v", i, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	reqs := s.Requests()
	if len(reqs) != 1+fdCmds+workers*perWorker {
		t.Fatalf("server got %d requests, want %d", len(reqs), 1+fdCmds+workers*perWorker)
	}
	for i, r := range reqs {
		if hasFD := r.FD != nil; hasFD != (r.Name == "getfd") {
			t.Fatalf("request %d (%s): carried an fd = %v", i, r.Name, hasFD)
		}
	}
	if n := s.ReceivedFDs(); n != fdCmds {
		t.Fatalf("ReceivedFDs = %d, want %d", n, fdCmds)
	}
}

func TestAddFDAndFDSets(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	r, w := testPipe(t)
	ctx := ctxT(t, 5*time.Second)
	before := openFDCount(t)

	one := 1
	a, err := m.AddFD(ctx, r, &qmp.AddFDArgs{FDSetID: &one, Opaque: "pipe read end"})
	if err != nil {
		t.Fatalf("AddFD(r, set 1): %v", err)
	}
	b, err := m.AddFD(ctx, w, &qmp.AddFDArgs{FDSetID: &one})
	if err != nil {
		t.Fatalf("AddFD(w, set 1): %v", err)
	}
	c, err := m.AddFD(ctx, w, nil)
	if err != nil {
		t.Fatalf("AddFD(w, nil): %v", err)
	}
	if a.FDSetID != 1 || b.FDSetID != 1 || c.FDSetID != 0 || a.FD == b.FD || b.FD == c.FD || a.FD == c.FD {
		t.Fatalf("AddFD results %+v %+v %+v, want sets 1, 1, 0 and distinct fds", a, b, c)
	}
	reqs := s.Requests()
	args := []string{string(reqs[1].Arguments), string(reqs[2].Arguments), string(reqs[3].Arguments)}
	if want := []string{`{"fdset-id":1,"opaque":"pipe read end"}`, `{"fdset-id":1}`, `{}`}; !reflect.DeepEqual(args, want) {
		t.Fatalf("add-fd arguments %q, want %q", args, want)
	}
	if got := openFDCount(t); got != before+3 {
		t.Fatalf("open fds after three AddFD = %d, want %d (the server's copies only)", got, before+3)
	}

	sets, err := m.QueryFDSets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []qmp.FDSet{
		{ID: 1, FDs: []qmp.FDSetFD{{FD: a.FD, Opaque: "pipe read end"}, {FD: b.FD}}},
		{ID: 0, FDs: []qmp.FDSetFD{{FD: c.FD}}},
	}
	if !reflect.DeepEqual(sets, want) {
		t.Fatalf("QueryFDSets = %+v, want %+v", sets, want)
	}

	bogus := 9999
	err = m.RemoveFD(ctx, 1, &bogus)
	wantGenericError(t, "RemoveFD(1, 9999)", err, "File descriptor named 'fdset-id:1, fd:9999' not found")
	if err := m.RemoveFD(ctx, 1, &a.FD); err != nil {
		t.Fatalf("RemoveFD(1, %d): %v", a.FD, err)
	}
	if err := m.RemoveFD(ctx, 0, nil); err != nil {
		t.Fatalf("RemoveFD(0, nil): %v", err)
	}
	if sets, err = m.QueryFDSets(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []qmp.FDSet{{ID: 1, FDs: []qmp.FDSetFD{{FD: b.FD}}}}; !reflect.DeepEqual(sets, want) {
		t.Fatalf("QueryFDSets after RemoveFD = %+v, want %+v", sets, want)
	}
	if err := m.RemoveFD(ctx, 1, nil); err != nil {
		t.Fatalf("RemoveFD(1, nil): %v", err)
	}
	if sets, err = m.QueryFDSets(ctx); err != nil || sets == nil || len(sets) != 0 {
		t.Fatalf("QueryFDSets with no sets = %#v, %v; want an empty slice", sets, err)
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after removing every set = %d, want %d", got, before)
	}

	err = m.RunContext(ctx, qmp.Command{"add-fd", nil}, nil)
	wantGenericError(t, "add-fd without an fd", err, "No file descriptor supplied via SCM_RIGHTS")
}

// pipeHasWriters reports whether any process still holds r's pipe's write
// end: a non-blocking read of an empty pipe fails with EAGAIN while a
// writer exists and returns 0 (EOF) once none is left.
func pipeHasWriters(t *testing.T, r *os.File) bool {
	t.Helper()
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), make([]byte, 1))
		return true // one attempt: never wait for readiness
	}); err != nil {
		t.Fatal(err)
	}
	switch {
	case rerr == syscall.EAGAIN:
		return true
	case rerr == nil && n == 0:
		return false
	}
	t.Fatalf("read from the pipe: n=%d err=%v, want EAGAIN or EOF", n, rerr)
	return false
}

func TestQEMUGetFDAndCloseFD(t *testing.T) {
	_, m := qemuMonitor(t, qemutest.Config{})
	ctx := ctxT(t, 10*time.Second)
	r, w := testPipe(t)
	before := openFDCount(t)

	if err := m.GetFD(ctx, "pipe-w", w); err != nil {
		t.Fatalf("GetFD: %v", err)
	}
	if err := m.GetFD(ctx, "pipe-w", w); err != nil {
		t.Fatalf("GetFD again under the same name: %v", err)
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after GetFD = %d, want %d", got, before)
	}
	// The caller's file is still usable; once it is closed, only QEMU's copy
	// keeps the pipe's write end open.
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatalf("caller's file after GetFD: %v", err)
	}
	if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if !pipeHasWriters(t, r) {
		t.Fatal("after GetFD and closing our end, the pipe has no writer: QEMU holds no copy")
	}
	if err := m.CloseFD(ctx, "pipe-w"); err != nil {
		t.Fatalf("CloseFD: %v", err)
	}
	if pipeHasWriters(t, r) {
		t.Fatal("after CloseFD the pipe still has a writer")
	}
	err := m.CloseFD(ctx, "pipe-w")
	wantGenericError(t, "second CloseFD", err, "File descriptor named 'pipe-w' not found")

	err = m.RunContext(ctx, qmp.Command{"getfd", map[string]string{"fdname": "nofd"}}, nil)
	wantGenericError(t, "getfd without an fd", err, "No file descriptor supplied via SCM_RIGHTS")

	r2, w2 := testPipe(t)
	before = openFDCount(t)
	if err := m.GetFD(ctx, "1st", w2); err == nil {
		t.Fatal("GetFD with a name starting with a digit: no error")
	} else {
		var ge *qmp.GenericError
		if !errors.As(err, &ge) || ge.Class != "GenericError" {
			t.Fatalf("GetFD(1st): got %T %v, want *qmp.GenericError", err, err)
		}
		t.Logf("QEMU: %s", ge.Desc)
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after a rejected GetFD = %d, want %d", got, before)
	}
	w2.Close()
	if pipeHasWriters(t, r2) {
		t.Fatal("QEMU kept the fd of a rejected getfd")
	}
}

func TestQEMUAddFD(t *testing.T) {
	_, m := qemuMonitor(t, qemutest.Config{})
	ctx := ctxT(t, 10*time.Second)
	r, w := testPipe(t)
	before := openFDCount(t)

	one := 1
	a, err := m.AddFD(ctx, r, &qmp.AddFDArgs{FDSetID: &one, Opaque: "pipe read end"})
	if err != nil {
		t.Fatalf("AddFD(r): %v", err)
	}
	b, err := m.AddFD(ctx, w, &qmp.AddFDArgs{FDSetID: &one})
	if err != nil {
		t.Fatalf("AddFD(w): %v", err)
	}
	if a.FDSetID != 1 || b.FDSetID != 1 || a.FD < 0 || b.FD < 0 || a.FD == b.FD {
		t.Fatalf("AddFD results %+v %+v, want set 1 and two distinct fds", a, b)
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after AddFD = %d, want %d", got, before)
	}
	sets, err := m.QueryFDSets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []qmp.FDSet{{ID: 1, FDs: []qmp.FDSetFD{{FD: a.FD, Opaque: "pipe read end"}, {FD: b.FD}}}}
	if !reflect.DeepEqual(sets, want) {
		t.Fatalf("QueryFDSets = %+v, want %+v", sets, want)
	}

	if err := m.RemoveFD(ctx, 1, &a.FD); err != nil {
		t.Fatalf("RemoveFD(1, %d): %v", a.FD, err)
	}
	if sets, err = m.QueryFDSets(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []qmp.FDSet{{ID: 1, FDs: []qmp.FDSetFD{{FD: b.FD}}}}; !reflect.DeepEqual(sets, want) {
		t.Fatalf("QueryFDSets after RemoveFD = %+v, want %+v", sets, want)
	}
	if err := m.RemoveFD(ctx, 1, nil); err != nil {
		t.Fatalf("RemoveFD(1, nil): %v", err)
	}
	if sets, err = m.QueryFDSets(ctx); err != nil || sets == nil || len(sets) != 0 {
		t.Fatalf("QueryFDSets after removing the set = %#v, %v; want an empty slice", sets, err)
	}
	bogus := 9999
	err = m.RemoveFD(ctx, 1, &bogus)
	wantGenericError(t, "RemoveFD of a removed set", err, "File descriptor named 'fdset-id:1, fd:9999' not found")

	var raw json.RawMessage
	err = m.RunContext(ctx, qmp.Command{"add-fd", nil}, &raw)
	wantGenericError(t, "add-fd without an fd", err, "No file descriptor supplied via SCM_RIGHTS")
}

// Fd commands mixed with concurrent ordinary traffic, batched together by
// the writer: QEMU finds each fd with its own getfd (a misplaced fd would
// make a getfd fail with "No file descriptor supplied via SCM_RIGHTS"). OOB
// is enabled so that QEMU reads ahead while it executes.
func TestQEMUFDCommandsAmidConcurrentTraffic(t *testing.T) {
	m := qemuOOBMonitor(t)
	r, w := testPipe(t)
	ctx := ctxT(t, 10*time.Second)
	before := openFDCount(t)

	const fdCmds, plain = 10, 100
	var wg sync.WaitGroup
	errs := make(chan error, fdCmds+plain)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < fdCmds; i++ {
			errs <- m.GetFD(ctx, "w", w)
		}
	}()
	for i := 0; i < plain; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st struct {
				Status string `json:"status"`
			}
			err := m.RunContext(ctx, qmp.Command{"query-status", nil}, &st)
			if err == nil && st.Status == "" {
				err = errors.New("query-status: empty status")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := openFDCount(t); got != before {
		t.Fatalf("open fds after %d GetFD = %d, want %d", fdCmds, got, before)
	}
	w.Close()
	if !pipeHasWriters(t, r) {
		t.Fatal("QEMU holds no copy of the pipe's write end")
	}
	if err := m.CloseFD(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if pipeHasWriters(t, r) {
		t.Fatal("a pipe writer is left after CloseFD: QEMU kept an fd it did not claim")
	}
}

// unixPair returns the two ends of a connected unix stream socketpair,
// closed at the end of the test.
func unixPair(t *testing.T) (client, server *net.UnixConn) {
	a, b := socketPair(t)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.UnixConn), b.(*net.UnixConn)
}

// A command larger than the socket buffer goes out in several writes; the
// descriptor travels with the first part only, and the rest follows intact.
func TestRunWithFilePartialWrite(t *testing.T) {
	client, server := unixPair(t)
	rc, err := client.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096) })

	type padded struct {
		Name string `json:"fdname"`
		Pad  string `json:"pad"`
	}
	cmd := qmp.Command{Name: "getfd", Arguments: padded{"big", strings.Repeat("p", 256<<10)}}
	want, _ := json.Marshal(cmd)

	type result struct {
		msg   []byte
		reads int // reads that carried a descriptor
		first bool
		err   error
	}
	got := make(chan result, 1)
	go func() {
		var r result
		defer func() { got <- r }()
		server.SetDeadline(time.Now().Add(10 * time.Second))
		greeting := `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\r\n"
		if _, r.err = server.Write([]byte(greeting)); r.err != nil {
			return
		}
		buf, oob := make([]byte, 64<<10), make([]byte, syscall.CmsgSpace(4*4))
		var in []byte
		// readN reads until in holds n bytes, noting descriptors.
		readN := func(n int) error {
			for len(in) < n {
				k, oobn, _, _, err := server.ReadMsgUnix(buf, oob)
				if err != nil {
					return err
				}
				if oobn > 0 {
					msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
					for _, cm := range msgs {
						fds, _ := syscall.ParseUnixRights(&cm)
						for _, fd := range fds {
							syscall.Close(fd)
							r.reads++
							r.first = len(in) == 0
						}
					}
				}
				in = append(in, buf[:k]...)
			}
			return nil
		}
		negotiate := `{"execute":"qmp_capabilities"}`
		if r.err = readN(len(negotiate)); r.err != nil {
			return
		}
		in = in[len(negotiate):]
		if _, r.err = server.Write([]byte("{\"return\": {}}\r\n")); r.err != nil {
			return
		}
		if r.err = readN(len(want)); r.err != nil {
			return
		}
		r.msg = in
		_, r.err = server.Write([]byte("{\"return\": {}}\r\n"))
	}()

	m, err := qmp.NewMonitorConn(ctxT(t, 10*time.Second), client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, w := testPipe(t)
	if err := m.RunWithFile(ctxT(t, 10*time.Second), cmd, nil, w); err != nil {
		t.Fatalf("RunWithFile: %v", err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	if !bytes.Equal(r.msg, want) {
		t.Fatalf("server got %d bytes that differ from the %d sent", len(r.msg), len(want))
	}
	if r.reads != 1 || !r.first {
		t.Fatalf("descriptor arrived %d times (with the command's first bytes: %v), want once, with them", r.reads, r.first)
	}
}

// An fd-carrying command with a long id gets its reply like any other: the
// bound on the reply ids the router decodes counts every id sent.
func TestLongIDOnFDCommand(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	_, w := testPipe(t)
	id := strings.Repeat("\u00e9", 200) // echoed as \u00E9: 6 bytes each
	cmd := json.RawMessage(`{"execute": "getfd", "arguments": {"fdname": "x"}, "id": "` + id + `"}`)
	if err := m.RunWithFile(ctxT(t, 5*time.Second), cmd, nil, w); err != nil {
		t.Fatalf("RunWithFile with a 400-byte id: %v", err)
	}
}
