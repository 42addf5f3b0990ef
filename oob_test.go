//go:build unix

package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// yankInstance is an element of query-yank's reply.
type yankInstance struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// qemuOOBMonitor starts a real QEMU and connects with OOB enabled.
func qemuOOBMonitor(t *testing.T) *qmp.Monitor {
	t.Helper()
	q := qemutest.Require(t, qemutest.Config{})
	m, err := qmp.Dial(ctxT(t, 10*time.Second), "unix", q.Sockets[0], &qmp.Options{EnableOOB: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if !m.OOBEnabled() {
		t.Fatal("OOB not negotiated with QEMU 7.2, which offers it")
	}
	return m
}

func TestOOBNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		offered    []string
		enable     bool
		wantOOB    bool
		negotiated []string
	}{
		{"enabled", nil, true, true, []string{"oob"}},
		{"not asked", nil, false, false, []string{}},
		{"not offered", []string{}, true, false, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, qmptest.Config{Capabilities: tc.offered})
			m := dial(t, s, &qmp.Options{EnableOOB: tc.enable})
			if got := m.OOBEnabled(); got != tc.wantOOB {
				t.Fatalf("OOBEnabled() = %v, want %v", got, tc.wantOOB)
			}
			if got := s.Negotiated(); !reflect.DeepEqual(got, tc.negotiated) {
				t.Fatalf("server negotiated %#v, want %#v", got, tc.negotiated)
			}
			err := m.RunOOB(ctxT(t, 5*time.Second), qmp.Command{"query-yank", nil}, nil)
			if tc.wantOOB {
				if err != nil {
					t.Fatalf("RunOOB: %v", err)
				}
				return
			}
			if !errors.Is(err, qmp.ErrOOBNotEnabled) {
				t.Fatalf("RunOOB without OOB: got %v, want ErrOOBNotEnabled", err)
			}
			// A round trip after it proves nothing was written before.
			if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{"query-name", nil}, nil); err != nil {
				t.Fatal(err)
			}
			if names := requestNames(s.Requests()); !reflect.DeepEqual(names, []string{"qmp_capabilities", "query-name"}) {
				t.Fatalf("server got %v, want only qmp_capabilities and query-name", names)
			}
		})
	}
}

func TestRunOOBReplies(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, &qmp.Options{EnableOOB: true})
	ctx := ctxT(t, 5*time.Second)

	var yank []yankInstance
	if err := m.RunOOB(ctx, qmp.Command{"query-yank", nil}, &yank); err != nil {
		t.Fatalf("RunOOB(query-yank): %v", err)
	}
	if want := []yankInstance{{"chardev", "qmp0"}}; !reflect.DeepEqual(yank, want) {
		t.Fatalf("query-yank = %+v, want %+v", yank, want)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	var id string
	if !last.OOB || last.Name != "query-yank" || json.Unmarshal(last.ID, &id) != nil || !strings.HasPrefix(id, "oob-") {
		t.Fatalf("server got %s (oob %v, id %s), want exec-oob query-yank with an \"oob-N\" id", last.Name, last.OOB, last.ID)
	}

	err := m.RunOOB(ctx, qmp.Command{"query-status", nil}, nil)
	wantGenericError(t, "RunOOB(query-status)", err, "The command query-status does not support OOB")
	err = m.RunOOB(ctx, qmp.Command{"migrate-pause", nil}, nil)
	wantNotInPostcopy(t, err)

	// Arguments travel with exec-oob too.
	if err := m.RunOOB(ctx, qmp.Command{"yank", map[string]any{"instances": []any{}}}, nil); err != nil {
		t.Fatalf("RunOOB(yank): %v", err)
	}
	reqs = s.Requests()
	if last := reqs[len(reqs)-1]; last.Name != "yank" || !last.OOB || string(last.Arguments) != `{"instances":[]}` {
		t.Fatalf("server got %s %s (oob %v), want exec-oob yank {\"instances\":[]}", last.Name, last.Arguments, last.OOB)
	}
}

// An OOB reply overtakes an in-band command still running, and each
// caller gets its own reply.
func TestOOBReplyOvertakesInBand(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	g := newHeldGate(t, map[string]string{"from": "slow"})
	s.Handle("slow", g.handle)
	m := dial(t, s, &qmp.Options{EnableOOB: true})

	type result struct {
		From string `json:"from"`
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		var r result
		r.err = m.RunContext(ctxT(t, 5*time.Second), qmp.Command{"slow", nil}, &r)
		slow <- r
	}()
	g.wait(t, 5*time.Second)

	var yank []yankInstance
	if err := m.RunOOB(ctxT(t, 5*time.Second), qmp.Command{"query-yank", nil}, &yank); err != nil {
		t.Fatalf("RunOOB while an in-band command runs: %v", err)
	}
	if want := []yankInstance{{"chardev", "qmp0"}}; !reflect.DeepEqual(yank, want) {
		t.Fatalf("query-yank = %+v, want %+v", yank, want)
	}
	select {
	case r := <-slow:
		t.Fatalf("the held in-band command completed before its release: %+v", r)
	default:
	}

	g.open()
	select {
	case r := <-slow:
		if r.err != nil || r.From != "slow" {
			t.Fatalf("in-band command got %+v, want its own reply {from: slow}", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-band command not answered within 5s of its release")
	}
}

// blockedCalls starts n in-band "block" commands, each reporting its error
// (nil only with the reply "done") on the returned channel.
func blockedCalls(t *testing.T, m *qmp.Monitor, n int) <-chan error {
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			var res string
			err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{"block", nil}, &res)
			if err == nil && res != "done" {
				err = errors.New("block returned " + res)
			}
			errs <- err
		}()
	}
	return errs
}

// With OOB negotiated at most 8 in-band commands are on the wire: QEMU
// stops reading its socket beyond that, which would also hold back OOB
// commands. The fake server reads 9 in-band commands (one running, 8
// queued) before it stops, so an OOB command getting through while 20
// in-band ones are held proves the client kept to 8.
func TestOOBInFlightCap(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	g := newHeldGate(t, "done")
	s.Handle("block", g.handle)
	m := dial(t, s, &qmp.Options{EnableOOB: true})

	const n, limit = 20, 8
	errs := blockedCalls(t, m, n)
	if reqs, err := s.WaitRequests(1+limit, 5*time.Second); err != nil {
		t.Fatalf("%v (got %v)", err, requestNames(reqs))
	}

	var yank []yankInstance
	if err := m.RunOOB(ctxT(t, 5*time.Second), qmp.Command{"query-yank", nil}, &yank); err != nil {
		t.Fatalf("RunOOB behind %d held in-band commands: %v", n, err)
	}
	if len(yank) != 1 || yank[0].Type != "chardev" {
		t.Fatalf("query-yank = %+v", yank)
	}

	// Callers beyond the cap give up with their ctx and are never sent.
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := m.RunContext(ctx, qmp.Command{"block", nil}, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("caller beyond the cap: got %v, want context.DeadlineExceeded", err)
		}
	}
	if got := countNamed(s.Requests(), "block"); got != limit {
		t.Fatalf("server received %d in-band commands while they were held, want %d", got, limit)
	}

	g.open()
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("held caller %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d held callers completed within 5s of the release", i, n)
		}
	}
	if got := countNamed(s.Requests(), "block"); got != n {
		t.Fatalf("server received %d in-band commands in all, want %d (the cancelled ones never sent)", got, n)
	}
}

func TestMaxInFlightOption(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	g := newHeldGate(t, "done")
	s.Handle("block", g.handle)
	m := dial(t, s, &qmp.Options{MaxInFlight: 2})

	errs := blockedCalls(t, m, 3)
	if reqs, err := s.WaitRequests(1+2, 5*time.Second); err != nil {
		t.Fatalf("%v (got %v)", err, requestNames(reqs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := m.RunContext(ctx, qmp.Command{"block", nil}, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller beyond MaxInFlight: got %v, want context.DeadlineExceeded", err)
	}
	if got := countNamed(s.Requests(), "block"); got != 2 {
		t.Fatalf("server received %d commands with MaxInFlight 2, want 2", got)
	}
	g.open()
	for i := 0; i < 3; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("held caller %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of 3 held callers completed within 5s of the release", i)
		}
	}
	if got := countNamed(s.Requests(), "block"); got != 3 {
		t.Fatalf("server received %d commands in all, want 3", got)
	}
}

// migrate-pause sent out-of-band is answered while goroutines keep QEMU's
// in-band queue busy.
func TestQEMUOOBWhileInBandBusy(t *testing.T) {
	m := qemuOOBMonitor(t)
	ctx := ctxT(t, 10*time.Second)

	const hammers = 4
	stop := make(chan struct{})
	warm := make(chan struct{}, hammers)
	var wg sync.WaitGroup
	errs := make(chan error, hammers)
	for i := 0; i < hammers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				var st struct {
					Status string `json:"status"`
				}
				if err := m.RunContext(ctx, qmp.Command{"query-status", nil}, &st); err != nil || st.Status == "" {
					errs <- errors.Join(err, errors.New("query-status: status "+st.Status))
					return
				}
				if n == 0 {
					warm <- struct{}{}
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	for i := 0; i < hammers; i++ {
		select {
		case <-warm:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("in-band callers did not start")
		}
	}

	err := m.RunOOB(ctx, qmp.Command{"migrate-pause", nil}, nil)
	oobProbe(t, ctx, m)
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("in-band caller: %v", e)
	}
	wantNotInPostcopy(t, err)
	err = m.RunOOB(ctx, qmp.Command{"query-status", nil}, nil)
	wantGenericError(t, "RunOOB(query-status)", err, "The command query-status does not support OOB")
}

// QEMU answers an OOB command sent after a slow in-band one (a ~200 KB
// query-qmp-schema) as soon as it reads it, often before the in-band
// reply. Whether it overtakes depends on QEMU's timing, so only the
// answers are asserted; the order is logged.
func TestQEMUOOBOvertakesSchema(t *testing.T) {
	m := qemuOOBMonitor(t)
	ctx := ctxT(t, 10*time.Second)

	const attempts = 3
	overtook := 0
	for i := 0; i < attempts; i++ {
		type schemaResult struct {
			entries []struct {
				Name     string `json:"name"`
				MetaType string `json:"meta-type"`
			}
			err error
		}
		schema := make(chan schemaResult, 1)
		replyWait := awaitBlocking(t, "reply wait")
		go func() {
			var r schemaResult
			r.err = m.RunContext(ctx, qmp.Command{"query-qmp-schema", nil}, &r.entries)
			schema <- r
		}()
		// Once the caller waits for its reply, its command is written.
		replyWait()

		oobProbe(t, ctx, m)
		var r schemaResult
		select {
		case r = <-schema:
		default:
			overtook++
			r = <-schema
		}
		if r.err != nil {
			t.Fatalf("query-qmp-schema: %v", r.err)
		}
		found := false
		for _, e := range r.entries {
			found = found || e.Name == "query-status" && e.MetaType == "command"
		}
		if len(r.entries) < 100 || !found {
			t.Fatalf("query-qmp-schema: %d entries, query-status command listed: %v", len(r.entries), found)
		}
	}
	t.Logf("the OOB reply overtook the in-band query-qmp-schema in %d of %d attempts", overtook, attempts)
}

// oobProbe runs an out-of-band command that this QEMU answers with a
// result and checks it: query-yank (QEMU 6.0 and later: the monitor's
// chardev), else migrate-pause, QEMU 5.2's only other, whose answer
// outside postcopy is an error.
func oobProbe(t *testing.T, ctx context.Context, m *qmp.Monitor) {
	t.Helper()
	var yank []yankInstance
	err := m.RunOOB(ctx, qmp.Command{"query-yank", nil}, &yank)
	var cnf *qmp.CommandNotFound
	if errors.As(err, &cnf) && m.Version().QEMU.Major < 6 {
		wantNotInPostcopy(t, m.RunOOB(ctx, qmp.Command{"migrate-pause", nil}, nil))
		return
	}
	if err != nil || len(yank) == 0 || yank[0].Type != "chardev" || yank[0].ID == "" {
		t.Fatalf("RunOOB(query-yank) = %+v, %v; want the monitor's chardev", yank, err)
	}
}

// wantNotInPostcopy checks QEMU's refusal of migrate-pause outside
// postcopy, whose wording changes between versions.
func wantNotInPostcopy(t *testing.T, err error) {
	t.Helper()
	var ge *qmp.GenericError
	if !errors.As(err, &ge) || ge.Class != "GenericError" || !strings.Contains(ge.Desc, "postcopy") {
		t.Fatalf("RunOOB(migrate-pause) outside postcopy = %v, want QEMU's GenericError about postcopy", err)
	}
}
