package qmp_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

func TestSchemaFetchSharedAndCached(t *testing.T) {
	ss := newSchemaServer(t, true)
	m := dial(t, ss.Server, nil)
	ctx := ctxT(t, 10*time.Second)
	const n = 8
	got := make([]*qmp.Schema, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = m.Schema(ctx)
		}()
	}
	<-ss.in // the one fetch is being served; callers are waiting or about to
	// A caller whose ctx ends gives up alone.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Schema(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Schema(cancelled ctx) during the fetch = %v, want context.Canceled", err)
	}
	close(ss.gate)
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] == nil || got[i] != got[0] {
			t.Fatalf("caller %d: %p, %v; want the same schema for all", i, got[i], errs[i])
		}
	}
	again, err := m.Schema(ctx)
	if err != nil || again != got[0] {
		t.Errorf("Schema again = %p, %v; want the cached %p", again, err, got[0])
	}
	if c := ss.calls.Load(); c != 1 {
		t.Errorf("query-qmp-schema was sent %d times, want 1", c)
	}
	if !got[0].Has("blockdev-add.driver=file.aio=io_uring") {
		t.Error("the fetched schema lacks file's aio io_uring")
	}
}

func TestSchemaFailedFetchNotCached(t *testing.T) {
	ss := newSchemaServer(t, false)
	ss.fail.Store(true)
	m := dial(t, ss.Server, nil)
	ctx := ctxT(t, 10*time.Second)
	_, err := m.Schema(ctx)
	var ge *qmp.GenericError
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), "fetching the schema") {
		t.Fatalf("Schema with a failing QEMU = %v, want a *GenericError about fetching the schema", err)
	}
	ss.fail.Store(false)
	s, err := m.Schema(ctx)
	if err != nil || s.Command("query-status") == nil {
		t.Fatalf("Schema after the failure = %v, %v", s, err)
	}
	if c := ss.calls.Load(); c != 2 {
		t.Errorf("query-qmp-schema was sent %d times, want 2", c)
	}
	m.Close()
	if s2, err := m.Schema(ctx); err != nil || s2 != s {
		t.Errorf("Schema after Close = %p, %v; want the cached schema", s2, err)
	}
}
