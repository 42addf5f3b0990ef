package qmp

// SetTestHook makes f hear where calls are about to block (see testHook),
// until the returned func restores the previous hook.
func SetTestHook(f func(blocking string)) (restore func()) {
	old := testHook.Swap(&f)
	return func() { testHook.Store(old) }
}
