package qmp

// Freezing the guest's file systems (guest-fsfreeze-*), for a consistent
// snapshot or backup. A guest left frozen stops writing to its disks, so
// WithFrozenFS thaws whatever happens.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// GuestFSFreezeFreeze freezes the guest's file systems, those of
// mountpoints only when it is not empty (guest-fsfreeze-freeze,
// guest-fsfreeze-freeze-list), and returns how many it froze.
func (a *Agent) GuestFSFreezeFreeze(ctx context.Context, mountpoints []string) (int64, error) {
	if len(mountpoints) == 0 {
		return agentCall[int64](ctx, a, "guest-fsfreeze-freeze", nil)
	}
	return agentCall[int64](ctx, a, "guest-fsfreeze-freeze-list", map[string][]string{"mountpoints": mountpoints})
}

// GuestFSFreezeThaw thaws the guest's file systems (guest-fsfreeze-thaw)
// and returns how many it thawed.
func (a *Agent) GuestFSFreezeThaw(ctx context.Context) (int64, error) {
	return agentCall[int64](ctx, a, "guest-fsfreeze-thaw", nil)
}

// thawTimeout bounds WithFrozenFS's thaw when the caller's ctx has ended.
const thawTimeout = 30 * time.Second

// WithFrozenFS freezes the guest's file systems (those of mountpoints
// only, when it is not empty), runs fn, and thaws them, also when fn fails
// or panics or ctx ends: the thaw runs with its own 30 s bound once ctx
// has ended. It returns fn's error and the thaw's together (errors.Join).
// A freeze that fails is thawed too, since it may have frozen some file
// systems before failing.
func (a *Agent) WithFrozenFS(ctx context.Context, mountpoints []string, fn func(context.Context) error) (err error) {
	defer func() {
		tctx := ctx
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			tctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), thawTimeout)
			defer cancel()
		}
		if _, terr := a.GuestFSFreezeThaw(tctx); terr != nil {
			err = errors.Join(err, fmt.Errorf("qmp: the guest's file systems may still be frozen: %w", terr))
		}
	}()
	if _, err := a.GuestFSFreezeFreeze(ctx, mountpoints); err != nil {
		return err
	}
	return fn(ctx)
}
