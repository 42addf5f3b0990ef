package qmp

// Fetching the schema: once per connection, shared by concurrent callers,
// each of which may give up (its ctx) without cancelling the fetch for the
// others.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
)

// schemaCache is a Monitor's schema state: the parsed schema once fetched,
// the fetch in progress, and the deprecation warnings already logged.
type schemaCache struct {
	mu     sync.Mutex
	schema *Schema
	fetch  *schemaFetch // in progress, or nil

	// known is schema, for the typed calls' check, which must not wait
	// for mu while a fetch holds it.
	known atomic.Pointer[Schema]

	// dep is set once the schema is known and a logger is set: the
	// deprecation hook does nothing until then.
	dep    atomic.Pointer[deprecations]
	warned sync.Map // names already warned about
}

// schemaFetch is one query-qmp-schema in flight, shared by every caller
// of Schema that arrives while it runs.
type schemaFetch struct {
	done   chan struct{}
	schema *Schema
	err    error
}

// Schema returns the schema of the connected QEMU. The first call fetches
// it (query-qmp-schema, ~200 KB) and parses it; later calls return the
// same *Schema. Concurrent callers share one fetch; ctx bounds only this
// caller's wait, and the fetch goes on for the others (it ends at the
// latest with the connection). A caller waiting for the fetch also stops
// waiting when the connection ends, with the connection's error. A failed
// fetch is not kept: the next call tries again. Safe for concurrent use.
//
// Once the schema is known and Options.Logger is set, the first command
// (or argument member) sent that this QEMU marks deprecated is logged at
// warn level, once per name.
func (m *Monitor) Schema(ctx context.Context) (*Schema, error) {
	ctx = ctxOrBackground(ctx)
	c := &m.schema
	c.mu.Lock()
	if s := c.schema; s != nil {
		c.mu.Unlock()
		return s, nil
	}
	if err := ctx.Err(); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("qmp: waiting for query-qmp-schema: %w", err) // a caller that has given up starts no fetch
	}
	f := c.fetch
	if f == nil {
		f = &schemaFetch{done: make(chan struct{})}
		c.fetch = f
		go m.fetchSchema(f)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.schema, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp: waiting for query-qmp-schema: %w", ctx.Err())
	case <-m.done:
		// A fetch that finished as the connection ended still counts; one
		// that did not may be parsing a reply that came just before the
		// end, which a caller of a closed Monitor need not wait for.
		select {
		case <-f.done:
			return f.schema, f.err
		default:
			return nil, fmt.Errorf("qmp: waiting for query-qmp-schema: %w", m.Err())
		}
	}
}

// fetchSchema runs f to completion and settles the cache.
func (m *Monitor) fetchSchema(f *schemaFetch) {
	var raw json.RawMessage
	err := m.RunContext(context.Background(), Command{Name: "query-qmp-schema"}, &raw)
	var s *Schema
	if err == nil {
		s, err = ParseSchema(raw)
	}
	if err != nil {
		f.err = fmt.Errorf("qmp: fetching the schema: %w", err)
	}
	f.schema = s
	// Indexed before taking c.mu: callers of Schema wait for c.mu without
	// their ctx, and a large schema takes a while to index.
	var dep *deprecations
	if s != nil && m.log != nil {
		dep = newDeprecations(s)
	}
	c := &m.schema
	c.mu.Lock()
	c.fetch = nil
	if s != nil {
		c.schema = s
		c.known.Store(s)
		if dep != nil {
			c.dep.Store(dep)
		}
	}
	c.mu.Unlock()
	close(f.done)
}
